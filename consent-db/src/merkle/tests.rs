//! RFC 6962 / RFC 9162 test vectors from transparency-dev/merkle
//! (rfc6962/rfc6962_test.go, proof/verify_test.go, proof/proof_test.go),
//! and exhaustive checks on small trees.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn h(s: &str) -> Hash {
    hex(s).try_into().unwrap()
}

/// The leaves of verify_test.go.
fn vector_leaves() -> Vec<Hash> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|d| leaf_hash(&hex(d)))
    .collect()
}

/// roots[i] is the root of the first i + 1 leaves.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf number counted from 1, tree size, proof).
fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            3,
            3,
            vec![h(
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            )],
        ),
        (
            2,
            5,
            vec![
                h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
    ]
}

/// (size1, size2, proof).
fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            5,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (
            6,
            7,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
    ]
}

/// Every perfect node of a tree, computed by the definition, as the store
/// keeps them.
fn all_nodes(leaves: &[Hash]) -> HashMap<NodeId, Hash> {
    let mut nodes = HashMap::new();
    let mut f = Frontier::new();
    for leaf in leaves {
        f.push(*leaf, |id, h| {
            nodes.insert(id, *h);
        });
    }
    nodes
}

/// A proof's hashes from its spans, the way the store makes them.
fn hashes(spans: &[Span], nodes: &HashMap<NodeId, Hash>) -> Vec<Hash> {
    spans
        .iter()
        .map(|s| {
            let parts: Vec<Hash> = s.nodes().iter().map(|id| nodes[id]).collect();
            Span::fold(&parts).unwrap()
        })
        .collect()
}

/// MTH by the RFC's recursive definition, independent of Frontier.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = 1 << (63 - (n as u64 - 1).leading_zeros());
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

#[test]
fn rfc6962_hasher_vectors() {
    assert_eq!(
        empty_root(),
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(
        leaf_hash(b""),
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    );
    assert_eq!(
        leaf_hash(b"L123456"),
        h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    );
    // HashChildren takes the raw bytes "N123" and "N456" here.
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"\x01N123N456");
    assert_eq!(
        ctx.finish().as_ref(),
        hex("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")
    );
}

#[test]
fn roots_match_the_vectors_at_every_size() {
    let leaves = vector_leaves();
    let mut f = Frontier::new();
    assert_eq!(f.root(), empty_root());
    for (i, leaf) in leaves.iter().enumerate() {
        f.push(*leaf, |_, _| {});
        assert_eq!(f.root(), h(ROOTS[i]), "root of {} leaves", i + 1);
        assert_eq!(root_of(&leaves[..=i]), h(ROOTS[i]));
        assert_eq!(mth(&leaves[..=i]), h(ROOTS[i]));
    }
}

#[test]
fn inclusion_proofs_match_the_vectors_and_verify() {
    let leaves = vector_leaves();
    let nodes = all_nodes(&leaves);
    for (leaf, size, expected) in inclusion_vectors() {
        let index = leaf - 1;
        let proof = hashes(&inclusion_spans(index, size).unwrap(), &nodes);
        assert_eq!(proof, expected, "inclusion proof of leaf {index} in {size}");
        let root = h(ROOTS[size as usize - 1]);
        verify_inclusion(index, size, &leaves[index as usize], &proof, &root).unwrap();
    }
}

#[test]
fn consistency_proofs_match_the_vectors_and_verify() {
    let leaves = vector_leaves();
    let nodes = all_nodes(&leaves);
    for (from, to, expected) in consistency_vectors() {
        let proof = hashes(&consistency_spans(from, to).unwrap(), &nodes);
        assert_eq!(proof, expected, "consistency proof {from} → {to}");
        let (r1, r2) = (h(ROOTS[from as usize - 1]), h(ROOTS[to as usize - 1]));
        verify_consistency(from, to, &proof, &r1, &r2).unwrap();
    }
}

#[test]
fn proof_nodes_match_transparency_dev() {
    let ids = |spans: Vec<Span>| -> Vec<(u8, u64)> {
        spans
            .iter()
            .flat_map(|s| s.nodes())
            .map(|n| (n.level, n.index))
            .collect()
    };
    // proof_test.go TestInclusion (a "rehash" pair is one span of two nodes).
    assert_eq!(
        ids(inclusion_spans(4, 7).unwrap()),
        [(0, 5), (0, 6), (2, 0)]
    );
    assert_eq!(
        ids(inclusion_spans(0, 7).unwrap()),
        [(0, 1), (1, 1), (1, 2), (0, 6)]
    );
    assert_eq!(
        ids(inclusion_spans(3, 5).unwrap()),
        [(0, 2), (1, 0), (0, 4)]
    );
    assert_eq!(
        ids(inclusion_spans(81, 95).unwrap()),
        [
            (0, 80),
            (1, 41),
            (2, 21),
            (2, 22),
            (1, 46),
            (0, 94),
            (4, 4),
            (6, 0)
        ]
    );
    // TestConsistency.
    assert_eq!(
        ids(consistency_spans(5, 7).unwrap()),
        [(0, 4), (0, 5), (0, 6), (2, 0)]
    );
    assert_eq!(
        ids(consistency_spans(7, 8).unwrap()),
        [(0, 6), (0, 7), (1, 2), (2, 0)]
    );
    assert_eq!(ids(consistency_spans(4, 7).unwrap()), [(1, 2), (0, 6)]);
    assert!(consistency_spans(8, 8).unwrap().is_empty());
    assert!(consistency_spans(9, 8).is_err());
    assert!(consistency_spans(0, 8).is_err());
    assert!(inclusion_spans(7, 7).is_err());
    assert!(inclusion_spans(0, 0).is_err());
}

#[test]
fn every_proof_in_small_trees_verifies_and_every_corruption_fails() {
    let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let nodes = all_nodes(&leaves);
    let roots: Vec<Hash> = (0..=leaves.len()).map(|n| mth(&leaves[..n])).collect();
    for size in 1..=leaves.len() as u64 {
        let root = roots[size as usize];
        for index in 0..size {
            let spans = inclusion_spans(index, size).unwrap();
            assert!(spans.iter().map(|s| s.nodes().len()).sum::<usize>() <= 2 * 64);
            let proof = hashes(&spans, &nodes);
            let leaf = leaves[index as usize];
            verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
            assert!(verify_inclusion(
                index,
                size,
                &leaves[(index as usize + 1) % 70],
                &proof,
                &root
            )
            .is_err());
            if size > 1 {
                assert!(verify_inclusion((index + 1) % size, size, &leaf, &proof, &root).is_err());
            }
            for i in 0..proof.len() {
                let mut bad = proof.clone();
                bad[i][0] ^= 8;
                assert!(verify_inclusion(index, size, &leaf, &bad, &root).is_err());
            }
            let mut long = proof.clone();
            long.push(root);
            assert!(verify_inclusion(index, size, &leaf, &long, &root).is_err());
            if !proof.is_empty() {
                assert!(verify_inclusion(index, size, &leaf, &proof[1..], &root).is_err());
            }
        }
        for from in 1..=size {
            let proof = hashes(&consistency_spans(from, size).unwrap(), &nodes);
            let r1 = roots[from as usize];
            verify_consistency(from, size, &proof, &r1, &root).unwrap();
            if from < size {
                assert!(verify_consistency(from, size, &proof, &root, &r1).is_err());
                assert!(verify_consistency(from, size, &[], &r1, &root).is_err());
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i][0] ^= 16;
                    assert!(verify_consistency(from, size, &bad, &r1, &root).is_err());
                }
                let mut long = proof.clone();
                long.push(root);
                assert!(verify_consistency(from, size, &long, &r1, &root).is_err());
            }
        }
    }
}

#[test]
fn a_frontier_rebuilt_from_stored_nodes_continues_the_same_tree() {
    let leaves: Vec<Hash> = (0u32..100).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    let nodes = all_nodes(&leaves);
    for cut in 0..=leaves.len() {
        let mut f = Frontier::from_nodes(cut as u64, |id| nodes.get(&id).copied()).unwrap();
        assert_eq!(f.size(), cut as u64);
        assert_eq!(f.root(), mth(&leaves[..cut]));
        for leaf in &leaves[cut..] {
            f.push(*leaf, |id, h| assert_eq!(nodes[&id], *h, "{id:?}"));
        }
        assert_eq!(f.root(), mth(&leaves));
    }
    assert!(Frontier::from_nodes(5, |_| None).is_none());
    assert_eq!(
        Frontier::node_ids(13),
        [NodeId::new(3, 0), NodeId::new(2, 2), NodeId::new(0, 12)]
    );
}
