//! The vector index and the blend, without a model.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::{
    recommend::{Signals, Weights, blend},
    vectors::{Entry, Vectors, dot},
};

fn unit(values: &[f32]) -> Vec<f32> {
    let norm = dot(values, values).sqrt();
    values.iter().map(|v| v / norm).collect()
}

fn entry(version: i64, active: bool, vector: &[f32]) -> Entry {
    Entry {
        version,
        category_id: None,
        active,
        vector: unit(vector),
    }
}

#[test]
fn nearest_finds_the_closest_products_for_sale_best_first() {
    let vectors = Vectors::new(3);
    let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    vectors.upsert(ids[0], entry(1, true, &[1.0, 0.0, 0.0]));
    vectors.upsert(ids[1], entry(1, true, &[0.9, 0.1, 0.0]));
    vectors.upsert(ids[2], entry(1, true, &[0.0, 1.0, 0.0]));
    vectors.upsert(ids[3], entry(1, false, &[1.0, 0.01, 0.0]));
    vectors.upsert(ids[4], entry(1, true, &[0.7, 0.7, 0.0]));
    let query = unit(&[1.0, 0.0, 0.0]);
    let found: Vec<Uuid> = vectors
        .nearest(&query, 2, &HashSet::from([ids[0]]))
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        found,
        [ids[1], ids[4]],
        "inactive and excluded products are skipped"
    );
    assert_eq!(vectors.active(), 4);
}

#[test]
fn only_newer_versions_replace_an_entry() {
    let vectors = Vectors::new(2);
    let id = Uuid::now_v7();
    assert!(vectors.upsert(id, entry(2, true, &[1.0, 0.0])));
    assert!(!vectors.upsert(id, entry(2, true, &[0.0, 1.0])));
    assert!(!vectors.upsert(id, entry(1, false, &[0.0, 1.0])));
    // A newer inactive version without a vector keeps the last one.
    assert!(vectors.upsert(
        id,
        Entry {
            version: 3,
            category_id: None,
            active: false,
            vector: vec![],
        }
    ));
    let held = vectors.get(id).expect("held");
    assert_eq!((held.version, held.active), (3, false));
    assert_eq!(held.vector, unit(&[1.0, 0.0]));
}

#[test]
fn the_blend_weighs_similarity_co_purchases_and_sales() {
    let (similar, bought, sold) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let content = HashMap::from([(similar, 0.9), (bought, 0.5), (sold, 0.5)]);
    let none = HashMap::new();
    let only_content = Weights {
        content: 1.0,
        co_purchase: 0.0,
        sales: 0.0,
    };
    let signals = Signals {
        co_purchases: &none,
        sales: &none,
    };
    let alone = blend(&content, signals, only_content, 3);
    assert_eq!(alone[0].id, similar);
    assert_eq!(alone[0].score, 0.9);

    let co_purchases = HashMap::from([(bought, 10)]);
    let sales = HashMap::from([(sold, 99), (similar, 9)]);
    let signals = Signals {
        co_purchases: &co_purchases,
        sales: &sales,
    };
    let weights = Weights {
        content: 0.5,
        co_purchase: 0.4,
        sales: 0.1,
    };
    let blended = blend(&content, signals, weights, 2);
    assert_eq!(blended.len(), 2);
    assert_eq!(blended[0].id, bought);
    assert!((blended[0].score - (0.5 * 0.5 + 0.4)).abs() < 1e-6);
    // Sales count on a log scale, relative to the best seller.
    let expected = 0.5 * 0.9 + 0.1 * (10f32.ln() / 100f32.ln());
    assert_eq!(blended[1].id, similar);
    assert!((blended[1].score - expected).abs() < 1e-6);
}

#[test]
fn beyond_the_exact_limit_search_is_approximate_with_high_recall() {
    const DIMENSION: usize = 32;
    let mut rng = crate::synthetic::Rng(7);
    let centres: Vec<Vec<f32>> = (0..40)
        .map(|_| unit(&(0..DIMENSION).map(|_| rng.normal()).collect::<Vec<_>>()))
        .collect();
    let vectors = Vectors::with_exact_limit(DIMENSION, 2000);
    let mut ids = Vec::new();
    for n in 0..6000 {
        let id = Uuid::now_v7();
        let centre = &centres[n % centres.len()];
        let vector: Vec<f32> = centre.iter().map(|c| c + 0.3 * rng.normal()).collect();
        vectors.upsert(id, entry(1, true, &vector));
        ids.push(id);
        assert_eq!(vectors.is_approximate(), n + 1 > 2000, "at {n}");
    }
    // A changed vector moves to its new group and is found there.
    let moved = ids[0];
    let target = unit(&centres[7]);
    vectors.upsert(moved, entry(2, true, &target));
    let none = HashSet::new();
    assert_eq!(vectors.nearest(&target, 1, &none)[0].id, moved);

    let mut found = 0;
    for q in 0..100 {
        let query = vectors.get(ids[q * 37]).expect("held").vector;
        let exact: HashSet<Uuid> = vectors
            .nearest_exact(&query, 10, &none)
            .iter()
            .map(|s| s.id)
            .collect();
        found += vectors
            .nearest(&query, 10, &none)
            .iter()
            .filter(|s| exact.contains(&s.id))
            .count();
    }
    let recall = found as f64 / 1000.0;
    assert!(recall >= 0.9, "recall@10 {recall}");
}

#[test]
fn the_exhaustive_scan_is_exact_among_near_ties() {
    // Tight clusters: many scores lie closer together than bfloat16's rounding, so the rough
    // pass alone would misorder them; the exact pass must not. Enough products for the scan
    // to be shared between threads.
    const DIMENSION: usize = 32;
    let mut rng = crate::synthetic::Rng(11);
    let centres: Vec<Vec<f32>> = (0..5)
        .map(|_| unit(&(0..DIMENSION).map(|_| rng.normal()).collect::<Vec<_>>()))
        .collect();
    let vectors = Vectors::new(DIMENSION);
    let mut held = Vec::new();
    for n in 0..24_000 {
        let id = Uuid::now_v7();
        let centre = &centres[n % centres.len()];
        let vector: Vec<f32> = centre.iter().map(|c| c + 0.01 * rng.normal()).collect();
        let active = n % 7 != 0;
        vectors.upsert(id, entry(1, active, &vector));
        held.push((id, active));
    }
    assert!(!vectors.is_approximate());
    let stored: HashMap<Uuid, Vec<f32>> = held
        .iter()
        .map(|(id, _)| (*id, vectors.get(*id).expect("held").vector))
        .collect();
    for q in 0..20 {
        let query = unit(
            &centres[q % centres.len()]
                .iter()
                .map(|c| c + 0.01 * rng.normal())
                .collect::<Vec<_>>(),
        );
        let exclude: HashSet<Uuid> = held.iter().skip(q).step_by(50).map(|h| h.0).collect();
        let mut all: Vec<crate::vectors::Scored> = held
            .iter()
            .filter(|(id, active)| *active && !exclude.contains(id))
            .map(|(id, _)| crate::vectors::Scored {
                id: *id,
                score: dot(&query, &stored[id]),
            })
            .collect();
        all.sort_by(|a, b| b.cmp(a));
        for k in [1, 10, 40] {
            let found = vectors.nearest_exact(&query, k, &exclude);
            assert_eq!(found, all[..k].to_vec(), "query {q}, k {k}");
        }
    }
}
