//! The tantivy index: its schema, its analyzers, and the writer that applies product changes.
//!
//! Invariant: the index holds one document per product it has heard of, live or not; a
//! product that is not for sale (a draft, archived, or deleted) is a *tombstone* (`visible` =
//! 0, no text), kept so that its version is known and an older event about it is recognised
//! as stale. A change is applied only when its version is newer than the one held.
//!
//! Whether a product is in stock in the region comes from the inventory, with versions of its
//! own (`stock_version`): a document carries both, and each kind of change keeps the other's
//! state. A stock change rebuilds the document from the product as last indexed (`source`).

use std::{collections::HashMap, path::Path};

use meridian_jetstream::events::catalog::ProductSnapshotV1;
use serde::{Deserialize, Serialize};
use tantivy::{
    Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term,
    collector::TopDocs,
    query::TermQuery,
    schema::{
        FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
        TextOptions, Value as _,
    },
    tokenizer::{
        AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
        TextAnalyzer,
    },
};
use uuid::Uuid;

/// Lower-cased, accent-folded words, stemmed (English): what BM25 matches.
pub const STEMMED: &str = "meridian_stemmed";
/// The same words unstemmed: what typo tolerance and completion match.
pub const WORDS: &str = "meridian_words";

/// Descriptions in hits are cut to this many characters.
const HIT_DESCRIPTION_CHARS: usize = 300;

/// Memory for the writer's in-flight documents (tantivy's minimum is 15 MB per thread).
const WRITER_HEAP_BYTES: usize = 50_000_000;

#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// The product id, as text: the key of every update and delete.
    pub id: Field,
    /// Stemmed name (boosted), category name, and the rest (description, SKU, attributes).
    pub name: Field,
    pub category_name: Field,
    pub body: Field,
    /// Unstemmed words of the name and category name: what a typo is measured against.
    pub words: Field,
    /// Unstemmed words of the name alone, with positions: what completions follow.
    pub name_words: Field,
    /// The category id as text ("" for none).
    pub category: Field,
    /// Price in minor units.
    pub price: Field,
    /// Creation time (ms since the epoch, from the UUIDv7 id).
    pub created: Field,
    /// A per-product number that breaks ties the same way in every build of the index.
    pub tie: Field,
    pub version: Field,
    /// 1 when the product is for sale and searchable.
    pub visible: Field,
    /// The hit as the API shows it, serialized JSON.
    pub hit: Field,
    /// The display name, for completions.
    pub display_name: Field,
    /// 1 when the product has units on sale in the region.
    pub in_stock: Field,
    /// The version of the stock state (0: never heard of).
    pub stock_version: Field,
    /// The product as indexed ([`Source`] as JSON): what a stock change rebuilds from.
    pub source: Field,
}

pub fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = |tokenizer: &str, positions: bool| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(if positions {
                    IndexRecordOption::WithFreqsAndPositions
                } else {
                    IndexRecordOption::WithFreqs
                }),
        )
    };
    let fields = Fields {
        id: builder.add_text_field("id", STRING | FAST),
        name: builder.add_text_field("name", text(STEMMED, false)),
        category_name: builder.add_text_field("category_name", text(STEMMED, false)),
        body: builder.add_text_field("body", text(STEMMED, false)),
        words: builder.add_text_field("words", text(WORDS, false)),
        name_words: builder.add_text_field("name_words", text(WORDS, true)),
        category: builder.add_text_field("category", STRING | FAST),
        price: builder.add_i64_field("price", INDEXED | FAST),
        created: builder.add_i64_field("created", FAST),
        tie: builder.add_u64_field("tie", FAST),
        version: builder.add_i64_field("version", FAST),
        visible: builder.add_u64_field("visible", INDEXED | FAST),
        hit: builder.add_text_field("hit", STORED),
        display_name: builder.add_text_field("display_name", STORED),
        in_stock: builder.add_u64_field("in_stock", INDEXED | FAST),
        stock_version: builder.add_i64_field("stock_version", FAST),
        source: builder.add_text_field("source", STORED),
    };
    (builder.build(), fields)
}

fn analyzer(stemmed: bool) -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter);
    if stemmed {
        builder.filter(Stemmer::new(Language::English)).build()
    } else {
        builder.build()
    }
}

/// The words of `text` as the index reads them (`stemmed` or not).
pub fn tokens(text: &str, stemmed: bool) -> Vec<String> {
    let mut analyzer = analyzer(stemmed);
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// An open index and the reader that serves queries from its last commit.
pub struct SearchIndex {
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
}

impl SearchIndex {
    /// Creates an empty index in `dir` (in memory when `None`).
    pub fn create(dir: Option<&Path>) -> tantivy::Result<SearchIndex> {
        let (schema, fields) = schema();
        let index = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                Index::create_in_dir(dir, schema)?
            }
            None => Index::create_in_ram(schema),
        };
        Self::with_index(index, fields)
    }

    pub fn open(dir: &Path) -> tantivy::Result<SearchIndex> {
        let index = Index::open_in_dir(dir)?;
        let (schema, fields) = schema();
        if index.schema() != schema {
            return Err(tantivy::TantivyError::SchemaError(
                "the index on disk was built with another schema".into(),
            ));
        }
        Self::with_index(index, fields)
    }

    fn with_index(index: Index, fields: Fields) -> tantivy::Result<SearchIndex> {
        index.tokenizers().register(STEMMED, analyzer(true));
        index.tokenizers().register(WORDS, analyzer(false));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
        })
    }

    /// The writer, with the versions of every product the index holds.
    pub fn writer(&self) -> tantivy::Result<Writer> {
        let writer = self.index.writer_with_num_threads(1, WRITER_HEAP_BYTES)?;
        let versions = self.versions()?;
        Ok(Writer {
            writer,
            fields: self.fields,
            versions,
            sources: HashMap::new(),
            pending: 0,
        })
    }

    /// Every product's versions, read from the fast fields of the last commit.
    fn versions(&self) -> tantivy::Result<HashMap<Uuid, Held>> {
        let searcher = self.reader.searcher();
        let mut versions = HashMap::new();
        let mut id = String::new();
        for segment in searcher.segment_readers() {
            let fast = segment.fast_fields();
            let ids = fast.str("id")?;
            let version = fast.i64("version")?;
            let stock_version = fast.i64("stock_version")?;
            let in_stock = fast.u64("in_stock")?;
            let Some(ids) = ids else { continue };
            for doc in segment.doc_ids_alive() {
                if let (Some(ord), Some(v)) = (ids.ords().first(doc), version.first(doc))
                    && ids.ord_to_str(ord, &mut id)?
                    && let Ok(uuid) = Uuid::parse_str(&id)
                {
                    let held = Held {
                        version: v,
                        stock: Stock {
                            version: stock_version.first(doc).unwrap_or(0),
                            in_stock: in_stock.first(doc) == Some(1),
                        },
                    };
                    versions.insert(uuid, held);
                }
            }
        }
        Ok(versions)
    }

    /// How many products are searchable.
    pub fn visible_count(&self) -> tantivy::Result<u64> {
        let searcher = self.reader.searcher();
        // A count, not the term's document frequency: that includes replaced documents.
        let visible = TermQuery::new(
            Term::from_field_u64(self.fields.visible, 1),
            IndexRecordOption::Basic,
        );
        Ok(searcher.search(&visible, &tantivy::collector::Count)? as u64)
    }
}

/// Applies product changes; nothing is visible to queries before [`Writer::commit`].
pub struct Writer {
    writer: IndexWriter,
    fields: Fields,
    versions: HashMap<Uuid, Held>,
    /// Live products indexed since the last commit (which the reader cannot see yet).
    sources: HashMap<Uuid, Source>,
    pending: usize,
}

/// What the index holds of a product.
#[derive(Debug, Clone, Copy, Default)]
struct Held {
    /// The catalog's version (0: only its stock is known).
    version: i64,
    stock: Stock,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Stock {
    version: i64,
    in_stock: bool,
}

/// A live product as indexed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Source {
    product: ProductSnapshotV1,
    category_name: Option<String>,
}

/// A hit as the API shows it.
#[derive(Debug, Serialize)]
struct Hit<'a> {
    id: Uuid,
    sku: &'a str,
    name: &'a str,
    description: &'a str,
    price: Price<'a>,
    category_id: Option<Uuid>,
    seller_id: Uuid,
    attributes: &'a serde_json::Value,
    images: &'a [String],
    /// Whether the region has units on sale.
    in_stock: bool,
}

#[derive(Debug, Serialize)]
struct Price<'a> {
    amount: i64,
    currency: &'a str,
}

/// What applying a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// The index already held this version or a newer one.
    Stale,
}

impl Writer {
    fn held(&self, id: Uuid) -> Held {
        self.versions.get(&id).copied().unwrap_or_default()
    }

    fn is_newer(&self, id: Uuid, version: i64) -> bool {
        self.versions
            .get(&id)
            .is_none_or(|held| version > held.version)
    }

    /// Replaces the product's document.
    fn put(&mut self, id: Uuid, held: Held, source: Option<Source>) -> tantivy::Result<()> {
        let f = self.fields;
        self.writer
            .delete_term(Term::from_field_text(f.id, &id.to_string()));
        let doc = match &source {
            Some(source) => product_document(f, source, held.stock),
            None => tombstone(f, id, held),
        };
        self.writer.add_document(doc)?;
        self.versions.insert(id, held);
        match source {
            Some(source) => self.sources.insert(id, source),
            None => self.sources.remove(&id),
        };
        self.pending += 1;
        Ok(())
    }

    /// Indexes the product as `snapshot` describes it, unless a newer version is held.
    pub fn upsert(
        &mut self,
        snapshot: &ProductSnapshotV1,
        category_name: Option<&str>,
    ) -> tantivy::Result<Applied> {
        if !self.is_newer(snapshot.id, snapshot.version) {
            return Ok(Applied::Stale);
        }
        let held = Held {
            version: snapshot.version,
            stock: self.held(snapshot.id).stock,
        };
        let source = (snapshot.status == "active").then(|| Source {
            product: snapshot.clone(),
            category_name: category_name.map(str::to_owned),
        });
        self.put(snapshot.id, held, source)?;
        Ok(Applied::Applied)
    }

    /// Makes the product unsearchable, unless a newer version is held.
    pub fn delete(&mut self, id: Uuid, version: i64) -> tantivy::Result<Applied> {
        if !self.is_newer(id, version) {
            return Ok(Applied::Stale);
        }
        let held = Held {
            version,
            stock: self.held(id).stock,
        };
        self.put(id, held, None)?;
        Ok(Applied::Applied)
    }

    /// For a build, before the product's [`Writer::upsert`]: the stock its document is written
    /// with (one document per product, not two).
    pub fn preset_stock(&mut self, id: Uuid, in_stock: bool, version: i64) {
        let held = self.versions.entry(id).or_default();
        if version > held.stock.version {
            held.stock = Stock { version, in_stock };
        }
    }

    /// Records whether the product is in stock, unless a newer stock version is held. A live
    /// product's document is rebuilt from its source: this batch's, or `reader`'s (the last
    /// commit).
    pub fn set_stock(
        &mut self,
        id: Uuid,
        in_stock: bool,
        version: i64,
        reader: &IndexReader,
    ) -> tantivy::Result<Applied> {
        let held = self.held(id);
        if version <= held.stock.version {
            return Ok(Applied::Stale);
        }
        let stock = Stock { version, in_stock };
        let source = match self.sources.get(&id) {
            Some(source) => Some(source.clone()),
            None => committed_source(reader, self.fields, id)?,
        };
        self.put(id, Held { stock, ..held }, source)?;
        Ok(Applied::Applied)
    }

    /// Changes applied since the last commit.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Makes everything applied so far durable and visible to `reader`.
    pub fn commit(&mut self, reader: &IndexReader) -> tantivy::Result<()> {
        if self.pending > 0 {
            self.writer.commit()?;
            reader.reload()?;
            self.pending = 0;
            self.sources.clear();
        }
        Ok(())
    }

    /// Products the index knows of, tombstones included.
    pub fn known(&self) -> usize {
        self.versions.len()
    }
}

/// The source of a live product in the last commit.
fn committed_source(reader: &IndexReader, f: Fields, id: Uuid) -> tantivy::Result<Option<Source>> {
    let searcher = reader.searcher();
    let query = TermQuery::new(
        Term::from_field_text(f.id, &id.to_string()),
        IndexRecordOption::Basic,
    );
    let Some((_, address)) = searcher
        .search(&query, &TopDocs::with_limit(1).order_by_score())?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let doc: TantivyDocument = searcher.doc(address)?;
    Ok(doc
        .get_first(f.source)
        .and_then(|value| value.as_str())
        .and_then(|json| serde_json::from_str(json).ok()))
}

fn tombstone(f: Fields, id: Uuid, held: Held) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_text(f.id, id.to_string());
    doc.add_i64(f.version, held.version);
    doc.add_u64(f.visible, 0);
    doc.add_i64(f.price, 0);
    doc.add_i64(f.created, 0);
    doc.add_u64(f.tie, 0);
    doc.add_text(f.category, "");
    add_stock(&mut doc, f, held.stock);
    doc
}

fn add_stock(doc: &mut TantivyDocument, f: Fields, stock: Stock) {
    doc.add_u64(f.in_stock, u64::from(stock.in_stock));
    doc.add_i64(f.stock_version, stock.version);
}

fn product_document(f: Fields, source: &Source, stock: Stock) -> TantivyDocument {
    let product = &source.product;
    let category_name = source.category_name.as_deref();
    let mut doc = TantivyDocument::default();
    doc.add_text(f.id, product.id.to_string());
    doc.add_i64(f.version, product.version);
    doc.add_u64(f.visible, 1);
    add_stock(&mut doc, f, stock);
    // A struct of strings, numbers and JSON values always serializes.
    doc.add_text(f.source, serde_json::to_string(source).unwrap_or_default());
    doc.add_text(f.name, &product.name);
    doc.add_text(f.words, &product.name);
    doc.add_text(f.name_words, &product.name);
    doc.add_text(f.display_name, &product.name);
    if let Some(category) = category_name {
        doc.add_text(f.category_name, category);
        doc.add_text(f.words, category);
    }
    doc.add_text(f.body, &product.description);
    doc.add_text(f.body, &product.sku);
    attribute_text(&product.attributes, &mut |text| doc.add_text(f.body, text));
    doc.add_text(
        f.category,
        product
            .category_id
            .map(|c| c.to_string())
            .unwrap_or_default(),
    );
    doc.add_i64(f.price, product.price_amount);
    doc.add_i64(f.created, created_ms(product.id));
    doc.add_u64(f.tie, tie(product.id));
    let description = match product
        .description
        .char_indices()
        .nth(HIT_DESCRIPTION_CHARS)
    {
        Some((end, _)) => &product.description[..end],
        None => &product.description,
    };
    let hit = Hit {
        id: product.id,
        sku: &product.sku,
        name: &product.name,
        description,
        price: Price {
            amount: product.price_amount,
            currency: &product.price_currency,
        },
        category_id: product.category_id,
        seller_id: product.seller_id,
        attributes: &product.attributes,
        images: &product.images,
        in_stock: stock.in_stock,
    };
    doc.add_text(f.hit, serde_json::to_string(&hit).unwrap_or_default());
    doc
}

/// The string and number values of attributes (`{"color": "red", "size": 42}`), and their keys.
fn attribute_text(value: &serde_json::Value, out: &mut dyn FnMut(&str)) {
    match value {
        serde_json::Value::String(s) => out(s),
        serde_json::Value::Number(n) => out(&n.to_string()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| attribute_text(v, out)),
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                out(key);
                attribute_text(v, out);
            }
        }
        serde_json::Value::Bool(_) | serde_json::Value::Null => {}
    }
}

/// Milliseconds since the epoch of a UUIDv7 id (0 for other versions).
fn created_ms(id: Uuid) -> i64 {
    id.get_timestamp()
        .map(|ts| {
            let (secs, nanos) = ts.to_unix();
            (secs as i64) * 1000 + i64::from(nanos / 1_000_000)
        })
        .unwrap_or(0)
}

/// The id's last 8 bytes (the random part of a UUIDv7).
fn tie(id: Uuid) -> u64 {
    let bytes = id.as_bytes();
    u64::from_be_bytes([
        bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyzers_fold_lowercase_and_stem() {
        assert_eq!(tokens("Café Headphones", false), ["cafe", "headphones"]);
        assert_eq!(tokens("Café Headphones", true), ["cafe", "headphon"]);
    }

    #[test]
    fn attribute_text_reads_keys_strings_and_numbers() {
        let mut seen = Vec::new();
        attribute_text(
            &serde_json::json!({"color": "red", "sizes": [42, 43], "wireless": true}),
            &mut |t| seen.push(t.to_owned()),
        );
        assert_eq!(seen, ["color", "red", "sizes", "42", "43", "wireless"]);
    }
}
