#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

fn canon(v: &Value) -> String {
    String::from_utf8(to_vec(v).unwrap()).unwrap()
}

#[test]
fn rfc8785_string_example() {
    // RFC 8785 §3.2.2.2: the JSON text
    // "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/" canonicalises as below.
    let v: Value =
        serde_json::from_str(r#""\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/""#).unwrap();
    assert_eq!(canon(&v), "\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"");
}

#[test]
fn rfc8785_sorting_example() {
    // RFC 8785 §3.2.3: members sorted by UTF-16 code units, so U+1F600
    // (a surrogate pair starting 0xD83D) sorts before U+FB33.
    let v: Value = serde_json::from_str(
        r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#,
    )
    .unwrap();
    assert_eq!(
        canon(&v),
        "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
    );
}

#[test]
fn strings_escape_only_what_jcs_escapes() {
    fn check(input: &str, expected: &str) {
        assert_eq!(canon(&json!(input)), expected, "{input:?}");
    }
    // Non-ASCII as UTF-8, never \u escapes.
    check(
        "sosialtjenesteloven § 43 (illustrativ)",
        "\"sosialtjenesteloven § 43 (illustrativ)\"",
    );
    check("Søknad om omsorgsbolig", "\"Søknad om omsorgsbolig\"");
    check("\u{2028}\u{2029}\u{7f}", "\"\u{2028}\u{2029}\u{7f}\"");
    // Short forms where ECMAScript has them, lower-case \u00xx otherwise.
    check("\u{8}\t\n\u{c}\r", "\"\\b\\t\\n\\f\\r\"");
    check("\u{0}\u{1}\u{b}\u{1f}", "\"\\u0000\\u0001\\u000b\\u001f\"");
    check("a\"b\\c/", "\"a\\\"b\\\\c/\"");
    check("", "\"\"");
}

#[test]
fn every_control_character_round_trips_through_a_json_parser() {
    let all: String = (0u8..0x20).map(char::from).collect();
    let text = canon(&json!(all));
    let back: String = serde_json::from_str(&text).unwrap();
    assert_eq!(back, all);
}

#[test]
fn integers_are_plain_and_floats_are_refused() {
    assert_eq!(canon(&json!(0)), "0");
    assert_eq!(canon(&json!(200)), "200");
    assert_eq!(canon(&json!(-5)), "-5");
    assert_eq!(canon(&json!(MAX_SAFE_INTEGER)), "9007199254740991");
    assert!(to_vec(&json!(MAX_SAFE_INTEGER + 1)).is_err());
    assert!(to_vec(&json!(u64::MAX)).is_err());
    assert!(to_vec(&json!(1.5)).is_err());
}

#[test]
fn structure_has_no_whitespace() {
    let v = json!({"b": [1, null, true, false, {"z": 1, "a": "x"}], "a": {}});
    assert_eq!(
        canon(&v),
        r#"{"a":{},"b":[1,null,true,false,{"a":"x","z":1}]}"#
    );
}
