//! `connectors::minimise` with a `JsonFields` mask.
//!
//! Input: the first line is the mask's path list (`aar,sum` or
//! `inntekt[].sum,person.navn`), the rest the provider's body. Checks: never
//! panics; fails exactly when the body is not JSON (fail closed, never passes
//! a body through); the output is JSON and equals a reference minimisation of
//! the input done on a tree that keeps member order and duplicate keys (the
//! documented rules: paths from the root, the value at a path's end kept
//! whole, members and `[]` elements on the way kept only with what the paths
//! name inside them, arrays at the root crossed without `[]`, the top level
//! keeps its type, a path that does not parse keeps nothing); minimising the
//! output again changes nothing.
#![no_main]

use bru_fuzz::{split_mask_input, Node};
use libfuzzer_sys::fuzz_target;
use policy::{FieldMask, JsonPath, PathStep};

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
    let paths: Vec<Vec<PathStep>> = fields
        .iter()
        .filter_map(|f| f.parse::<JsonPath>().ok())
        .map(|p| p.0)
        .collect();
    let paths: Vec<&[PathStep]> = paths.iter().map(Vec::as_slice).collect();
    let expected = match filter(&input, &paths, true) {
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

/// The documented rules over the list of paths still to follow (a trie in
/// the minimiser); `None` when nothing is kept.
fn filter(node: &Node, paths: &[&[PathStep]], root: bool) -> Option<Node> {
    if paths.iter().any(|p| p.is_empty()) {
        return Some(node.clone());
    }
    // The paths continuing through `step`, without it.
    let through = |step: &PathStep| -> Vec<&[PathStep]> {
        paths
            .iter()
            .filter(|p| p.first() == Some(step))
            .map(|p| &p[1..])
            .collect()
    };
    match node {
        Node::Obj(members) => {
            let kept: Vec<(String, Node)> = members
                .iter()
                .filter_map(|(k, v)| {
                    let rest = through(&PathStep::Member(k.clone()));
                    if rest.is_empty() {
                        return None;
                    }
                    filter(v, &rest, false).map(|v| (k.clone(), v))
                })
                .collect();
            (!kept.is_empty()).then_some(Node::Obj(kept))
        }
        Node::Arr(items) => {
            let (rest, root) = if root {
                (paths.to_vec(), true)
            } else {
                (through(&PathStep::Each), false)
            };
            if rest.is_empty() {
                return None;
            }
            let kept: Vec<Node> = items
                .iter()
                .filter_map(|v| filter(v, &rest, root))
                .collect();
            (!kept.is_empty()).then_some(Node::Arr(kept))
        }
        _ => None,
    }
}
