//! `connectors::minimise` with a `JsonFields` mask.
//!
//! Input: the first line is the allowed field list (`aar,sum`), the rest
//! the provider's body. Checks: never panics; fails exactly when the body is
//! not JSON (fail closed, never passes a body through); the output is JSON
//! and equals a reference minimisation of the input done on a tree that keeps
//! member order and duplicate keys (the documented rules: a member with an
//! allowed key is kept whole, another is kept only as a container that still
//! holds something, array elements likewise, the top level keeps its type);
//! minimising the output again changes nothing.
#![no_main]

use bru_fuzz::{split_mask_input, Node};
use libfuzzer_sys::fuzz_target;
use policy::FieldMask;

fuzz_target!(|data: &[u8]| {
    let (fields, body) = split_mask_input(data);
    let mask = FieldMask::JsonFields(fields.clone());
    let result = connectors::minimise(&mask, body);
    let input = Node::parse(body);
    assert_eq!(
        result.is_ok(),
        input.is_ok(),
        "minimise: {result:?}, parse: {input:?}"
    );
    let (Ok(out), Ok(input)) = (result, input) else {
        return;
    };
    let got = Node::parse(&out).expect("minimised output is not JSON");
    let expected = match filter(&input, &fields) {
        Some(n) => n,
        None => match input {
            Node::Obj(_) => Node::Obj(Vec::new()),
            Node::Arr(_) => Node::Arr(Vec::new()),
            _ => Node::Null,
        },
    };
    assert_eq!(got, expected, "output differs from the reference");
    let again = connectors::minimise(&mask, &out).expect("output does not minimise");
    assert_eq!(again, out, "not idempotent");
});

/// The documented rules; `None` when nothing is kept.
fn filter(node: &Node, allowed: &[String]) -> Option<Node> {
    match node {
        Node::Obj(members) => {
            let kept: Vec<(String, Node)> = members
                .iter()
                .filter_map(|(k, v)| {
                    if allowed.contains(k) {
                        Some((k.clone(), v.clone()))
                    } else {
                        filter(v, allowed).map(|v| (k.clone(), v))
                    }
                })
                .collect();
            (!kept.is_empty()).then_some(Node::Obj(kept))
        }
        Node::Arr(items) => {
            let kept: Vec<Node> = items.iter().filter_map(|v| filter(v, allowed)).collect();
            (!kept.is_empty()).then_some(Node::Arr(kept))
        }
        _ => None,
    }
}
