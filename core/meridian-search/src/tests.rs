//! The index and its queries, on an in-memory index.

use meridian_jetstream::events::catalog::ProductSnapshotV1;
use uuid::Uuid;

use crate::{
    index::{Applied, SearchIndex, Writer},
    query::{self, SearchRequest, Sort},
};

fn product(name: &str, description: &str, category: Option<Uuid>, price: i64) -> ProductSnapshotV1 {
    ProductSnapshotV1 {
        id: Uuid::now_v7(),
        sku: format!("SKU-{}", &Uuid::new_v4().simple().to_string()[..8]),
        name: name.to_owned(),
        description: description.to_owned(),
        price_amount: price,
        price_currency: "USD".into(),
        category_id: category,
        seller_id: Uuid::nil(),
        attributes: serde_json::json!({"color": "graphite"}),
        images: vec![],
        status: "active".into(),
        version: 1,
    }
}

struct Fixture {
    index: SearchIndex,
    writer: Writer,
}

impl Fixture {
    fn new() -> Self {
        let index = SearchIndex::create(None).expect("in-memory index");
        let writer = index.writer().expect("writer");
        Fixture { index, writer }
    }

    fn add(&mut self, product: &ProductSnapshotV1, category: Option<&str>) {
        assert_eq!(
            self.writer.upsert(product, category).expect("upsert"),
            Applied::Applied
        );
    }

    /// A new writer, which reads what it knows from the last commit.
    fn reopen_writer(&mut self) {
        drop(std::mem::replace(&mut self.writer, {
            // Tantivy allows one writer per index: release the first before opening another.
            let placeholder = SearchIndex::create(None).expect("index");
            placeholder.writer().expect("writer")
        }));
        self.writer = self.index.writer().expect("writer");
    }

    fn commit(&mut self) {
        self.writer.commit(&self.index.reader).expect("commit");
    }

    fn names(&self, request: &SearchRequest) -> Vec<String> {
        query::search(&self.index, request)
            .expect("search")
            .hits
            .iter()
            .map(|(json, _)| {
                let hit: serde_json::Value = serde_json::from_str(json).expect("hit JSON");
                hit["name"].as_str().expect("name").to_owned()
            })
            .collect()
    }
}

fn q(text: &str) -> SearchRequest {
    SearchRequest {
        q: text.to_owned(),
        limit: 20,
        ..Default::default()
    }
}

#[test]
fn one_typo_on_long_words_still_finds_the_product() {
    let mut fx = Fixture::new();
    fx.add(
        &product("Wireless Headphones", "Noise cancelling", None, 9900),
        None,
    );
    fx.add(
        &product("Espresso Machine", "Fifteen bar pump", None, 19900),
        None,
    );
    fx.commit();
    assert_eq!(fx.names(&q("headphnoes")), ["Wireless Headphones"]);
    assert_eq!(fx.names(&q("wirless headphone")), ["Wireless Headphones"]);
    assert_eq!(fx.names(&q("espreso")), ["Espresso Machine"]);
    // Short words need an exact (stemmed) match; two edits are too many.
    assert!(fx.names(&q("pmup")).is_empty());
    assert!(fx.names(&q("hedphnoes")).is_empty());
    // Every word must match.
    assert!(fx.names(&q("headphones espresso")).is_empty());
}

#[test]
fn a_name_match_ranks_above_a_description_match() {
    let mut fx = Fixture::new();
    fx.add(
        &product("Desk Lamp", "Pairs well with a kettle", None, 2500),
        None,
    );
    fx.add(&product("Kettle", "Boils water", None, 3000), None);
    fx.commit();
    assert_eq!(fx.names(&q("kettle")), ["Kettle", "Desk Lamp"]);
    // Attributes and stems match too.
    assert_eq!(fx.names(&q("graphite lamps")), ["Desk Lamp"]);
}

#[test]
fn facets_count_every_match_and_filters_narrow_them() {
    let audio = Uuid::now_v7();
    let kitchen = Uuid::now_v7();
    let mut fx = Fixture::new();
    for i in 0..30 {
        let (category, name) = if i % 3 == 0 {
            (kitchen, "Steel kettle")
        } else {
            (audio, "Steel speaker")
        };
        fx.add(
            &product(name, "", Some(category), 500 + i * 1000),
            Some("Things"),
        );
    }
    fx.commit();
    let mut request = q("steel");
    request.limit = 5;
    let results = query::search(&fx.index, &request).expect("search");
    assert_eq!(results.total, 30);
    assert_eq!(results.hits.len(), 5);
    assert_eq!(
        results.facets.categories,
        [(Some(audio), 20), (Some(kitchen), 10)]
    );
    // 500, 1500, ..., 29500: 1 under 1000, 1 in [1000, 2500), 3 in [2500, 5000), ...
    assert_eq!(results.facets.prices, [1, 1, 3, 5, 15, 5, 0]);
    assert_eq!(results.facets.prices.iter().sum::<u64>(), 30);

    request.category_id = Some(kitchen);
    request.min_price = Some(3000);
    request.max_price = Some(9500);
    let results = query::search(&fx.index, &request).expect("search");
    // Kitchen prices are 500, 3500, 6500, 9500, ...: three in range.
    assert_eq!(results.total, 3);
    assert_eq!(results.facets.categories, [(Some(kitchen), 3)]);
}

#[test]
fn sorts_and_pages_are_stable() {
    let mut fx = Fixture::new();
    for (name, price) in [("Mug blue", 1200), ("Mug red", 900), ("Mug green", 1500)] {
        fx.add(&product(name, "", None, price), None);
    }
    fx.commit();
    let mut request = q("mug");
    request.sort = Sort::PriceAsc;
    assert_eq!(fx.names(&request), ["Mug red", "Mug blue", "Mug green"]);
    request.sort = Sort::PriceDesc;
    assert_eq!(fx.names(&request), ["Mug green", "Mug blue", "Mug red"]);
    request.sort = Sort::Newest;
    assert_eq!(fx.names(&request), ["Mug green", "Mug red", "Mug blue"]);
    // Equal scores: newest first, in every sort.
    request.sort = Sort::Relevance;
    let all = fx.names(&request);
    request.limit = 1;
    request.offset = 1;
    assert_eq!(fx.names(&request), all[1..2]);
}

#[test]
fn older_versions_are_ignored_and_deletions_stick() {
    let mut fx = Fixture::new();
    let mut lamp = product("Desk Lamp", "", None, 2500);
    fx.add(&lamp, None);
    lamp.version = 3;
    lamp.name = "Floor Lamp".into();
    fx.add(&lamp, None);
    let mut stale = lamp.clone();
    stale.version = 2;
    stale.name = "Table Lamp".into();
    assert_eq!(
        fx.writer.upsert(&stale, None).expect("upsert"),
        Applied::Stale
    );
    fx.commit();
    assert_eq!(fx.names(&q("lamp")), ["Floor Lamp"]);

    assert_eq!(
        fx.writer.delete(lamp.id, 4).expect("delete"),
        Applied::Applied
    );
    // A late update from before the deletion does not bring it back.
    assert_eq!(
        fx.writer.upsert(&lamp, None).expect("upsert"),
        Applied::Stale
    );
    fx.commit();
    assert!(fx.names(&q("lamp")).is_empty());
    assert_eq!(fx.index.visible_count().expect("count"), 0);

    // A draft is not searchable, and its version is remembered across a reopen of the writer.
    let mut draft = product("Draft Lamp", "", None, 100);
    draft.status = "draft".into();
    fx.add(&draft, None);
    fx.commit();
    assert!(fx.names(&q("lamp")).is_empty());
    fx.reopen_writer();
    assert_eq!(fx.writer.known(), 2);
    assert_eq!(
        fx.writer.upsert(&lamp, None).expect("upsert"),
        Applied::Stale
    );
}

#[test]
fn completions_follow_word_prefixes() {
    let mut fx = Fixture::new();
    fx.add(&product("Trail Running Shoes", "", None, 9000), None);
    fx.add(&product("Running Socks", "", None, 900), None);
    fx.add(&product("Rain Jacket", "", None, 9000), None);
    fx.commit();
    let mut names = query::complete_names(&fx.index, "runn", 10).expect("complete");
    names.sort();
    assert_eq!(names, ["Running Socks", "Trail Running Shoes"]);
    assert_eq!(
        query::complete_names(&fx.index, "running sh", 10).expect("complete"),
        ["Trail Running Shoes"]
    );
    assert!(
        query::complete_names(&fx.index, "", 10)
            .expect("complete")
            .is_empty()
    );
}

#[test]
fn stock_filters_and_survives_product_changes_in_either_order() {
    let mut fx = Fixture::new();
    let in_stock = |value| SearchRequest {
        in_stock: Some(value),
        ..q("lamp")
    };
    let desk = product("Desk Lamp", "Brass", None, 4500);
    let floor = product("Floor Lamp", "Oak", None, 9900);
    // The stock of one arrives before the product itself.
    let reader = fx.index.reader.clone();
    assert_eq!(
        fx.writer
            .set_stock(floor.id, true, 1, &reader)
            .expect("stock"),
        Applied::Applied
    );
    fx.add(&desk, None);
    fx.add(&floor, None);
    fx.commit();
    assert_eq!(fx.names(&in_stock(true)), ["Floor Lamp"]);
    assert_eq!(fx.names(&in_stock(false)), ["Desk Lamp"]);

    // Stock changes rebuild committed documents (text and all) from their source.
    assert_eq!(
        fx.writer
            .set_stock(desk.id, true, 1, &reader)
            .expect("stock"),
        Applied::Applied
    );
    fx.commit();
    assert_eq!(fx.names(&in_stock(true)).len(), 2);
    assert_eq!(fx.names(&q("brass")), ["Desk Lamp"]);

    // A product change keeps the stock; an older stock change is stale.
    let mut renamed = desk.clone();
    renamed.name = "Desk Lamp Deluxe".into();
    renamed.version = 2;
    fx.add(&renamed, None);
    assert_eq!(
        fx.writer
            .set_stock(desk.id, false, 1, &reader)
            .expect("stock"),
        Applied::Stale
    );
    // A stock change in the same batch as the product change sees that change.
    assert_eq!(
        fx.writer
            .set_stock(floor.id, false, 2, &reader)
            .expect("stock"),
        Applied::Applied
    );
    fx.commit();
    assert_eq!(fx.names(&in_stock(true)), ["Desk Lamp Deluxe"]);
    assert_eq!(fx.names(&in_stock(false)), ["Floor Lamp"]);

    // Reopened, the writer knows every version.
    fx.reopen_writer();
    assert_eq!(
        fx.writer
            .set_stock(floor.id, true, 2, &reader)
            .expect("stock"),
        Applied::Stale
    );
    assert_eq!(
        fx.writer.upsert(&renamed, None).expect("upsert"),
        Applied::Stale
    );
    assert_eq!(
        fx.writer
            .set_stock(desk.id, false, 2, &reader)
            .expect("stock"),
        Applied::Applied
    );
    fx.commit();
    assert_eq!(fx.names(&q("deluxe")), ["Desk Lamp Deluxe"]);
    assert!(fx.names(&in_stock(true)).is_empty());
}

#[test]
fn a_build_writes_each_product_once_with_its_preset_stock() {
    let mut fx = Fixture::new();
    let kettle = product("Copper Kettle", "", None, 5900);
    fx.writer.preset_stock(kettle.id, true, 3);
    fx.add(&kettle, None);
    assert_eq!(fx.writer.pending(), 1);
    fx.commit();
    let request = SearchRequest {
        in_stock: Some(true),
        ..q("kettle")
    };
    assert_eq!(fx.names(&request), ["Copper Kettle"]);
    let reader = fx.index.reader.clone();
    assert_eq!(
        fx.writer
            .set_stock(kettle.id, false, 3, &reader)
            .expect("stock"),
        Applied::Stale
    );
}
