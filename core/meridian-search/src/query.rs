//! Queries against the index: full-text search with filters, facets and sorts; completions.
//!
//! Every word of a query must match (in the name, the category name, the description, the SKU
//! or an attribute, stemmed), or, for words of five letters or more, be one edit (a
//! transposition counts as one) from a word of the name or category name. BM25 ranks the
//! matches, a name match counting three times a description match.

use std::{collections::HashMap, ops::Bound};

use tantivy::{
    DocAddress, DocId, Score, Searcher, SegmentReader, TantivyDocument, Term,
    collector::{Collector, Count, SegmentCollector, TopDocs},
    columnar::{Column, StrColumn},
    query::{
        AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, PhrasePrefixQuery, Query,
        RangeQuery, TermQuery,
    },
    schema::{IndexRecordOption, Value},
};
use uuid::Uuid;

use crate::index::{Fields, SearchIndex, tokens};

/// The most words of a query that are read; the rest are ignored.
pub const MAX_WORDS: usize = 10;
/// Words this long or longer match with one typo.
pub const FUZZY_MIN_CHARS: usize = 5;
/// How deep pagination goes: a page may start at most this many hits in.
pub const MAX_OFFSET: usize = 10_000;

/// Price facet buckets, in minor units: `[PRICE_BUCKETS[i], PRICE_BUCKETS[i + 1])`, the last
/// one open-ended.
pub const PRICE_BUCKETS: [i64; 7] = [0, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000];

const NAME_BOOST: Score = 3.0;
const CATEGORY_BOOST: Score = 2.0;
const FUZZY_BOOST: Score = 0.5;

/// Words too common to require in every hit ("shoes for men" needs "shoes" and "men").
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    #[default]
    Relevance,
    PriceAsc,
    PriceDesc,
    Newest,
}

impl Sort {
    pub const ALL: [&'static str; 4] = ["relevance", "price_asc", "price_desc", "newest"];
}

#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub q: String,
    pub category_id: Option<Uuid>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// Only products with (`true`) or without (`false`) units on sale in the region.
    pub in_stock: Option<bool>,
    pub sort: Sort,
    pub offset: usize,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchResults {
    /// Each hit's JSON, as stored, with its relevance score.
    pub hits: Vec<(String, Score)>,
    pub total: u64,
    pub facets: Facets,
}

/// Exact counts over every hit, not just the page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facets {
    /// Category id (`None` for products without one) and count, largest first.
    pub categories: Vec<(Option<Uuid>, u64)>,
    /// One count per [`PRICE_BUCKETS`] entry.
    pub prices: [u64; PRICE_BUCKETS.len()],
}

/// Runs `request`.
pub fn search(index: &SearchIndex, request: &SearchRequest) -> tantivy::Result<SearchResults> {
    let f = index.fields;
    let query = build_query(f, request);
    let searcher = index.reader.searcher();
    let limit = request.limit.max(1);
    let top = TopDocs::with_limit(limit)
        .and_offset(request.offset)
        .tweak_score(SortKeys { sort: request.sort }.into_fn());
    let (top, total, facets) = searcher.search(&query, &(top, Count, FacetCollector))?;
    let hits = hits(&searcher, f, &top)?;
    Ok(SearchResults {
        hits,
        total: total as u64,
        facets,
    })
}

/// The facets of everything searchable: what `/search/filters` offers.
pub fn all_facets(index: &SearchIndex) -> tantivy::Result<Facets> {
    let f = index.fields;
    let searcher = index.reader.searcher();
    searcher.search(&visible(f), &FacetCollector)
}

fn hits(
    searcher: &Searcher,
    f: Fields,
    top: &[(SortKey, DocAddress)],
) -> tantivy::Result<Vec<(String, Score)>> {
    let mut hits = Vec::with_capacity(top.len());
    for (key, address) in top {
        let doc: TantivyDocument = searcher.doc(*address)?;
        let json = doc
            .get_first(f.hit)
            .and_then(|v| v.as_str())
            .unwrap_or("{}")
            .to_owned();
        hits.push((json, key.score));
    }
    Ok(hits)
}

fn visible(f: Fields) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_u64(f.visible, 1),
        IndexRecordOption::Basic,
    ))
}

fn build_query(f: Fields, request: &SearchRequest) -> BooleanQuery {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, visible(f))];
    for word in query_words(&request.q) {
        clauses.push((Occur::Must, Box::new(word_query(f, &word))));
    }
    if let Some(category) = request.category_id {
        clauses.push((
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_text(f.category, &category.to_string()),
                IndexRecordOption::Basic,
            )),
        ));
    }
    if request.min_price.is_some() || request.max_price.is_some() {
        let bound = |price: Option<i64>| match price {
            Some(p) => Bound::Included(Term::from_field_i64(f.price, p)),
            None => Bound::Unbounded,
        };
        clauses.push((
            Occur::Must,
            Box::new(RangeQuery::new(
                bound(request.min_price),
                bound(request.max_price),
            )),
        ));
    }
    if let Some(in_stock) = request.in_stock {
        clauses.push((
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_u64(f.in_stock, u64::from(in_stock)),
                IndexRecordOption::Basic,
            )),
        ));
    }
    if clauses.len() == 1 {
        clauses.push((Occur::Must, Box::new(AllQuery)));
    }
    BooleanQuery::new(clauses)
}

/// The query's words, lower-cased and folded, stop words dropped unless nothing else is left.
pub fn query_words(q: &str) -> Vec<String> {
    let mut words = tokens(q, false);
    words.truncate(MAX_WORDS);
    let content: Vec<String> = words
        .iter()
        .filter(|w| !STOP_WORDS.iter().any(|stop| stop == w))
        .cloned()
        .collect();
    if content.is_empty() { words } else { content }
}

fn word_query(f: Fields, word: &str) -> BooleanQuery {
    let stem = tokens(word, true)
        .into_iter()
        .next()
        .unwrap_or_else(|| word.to_owned());
    let term = |field, boost: Score| -> (Occur, Box<dyn Query>) {
        let query = TermQuery::new(
            Term::from_field_text(field, &stem),
            IndexRecordOption::WithFreqs,
        );
        (
            Occur::Should,
            Box::new(BoostQuery::new(Box::new(query), boost)),
        )
    };
    let mut alternatives = vec![
        term(f.name, NAME_BOOST),
        term(f.category_name, CATEGORY_BOOST),
        term(f.body, 1.0),
    ];
    if word.chars().count() >= FUZZY_MIN_CHARS {
        let fuzzy = FuzzyTermQuery::new(Term::from_field_text(f.words, word), 1, true);
        alternatives.push((
            Occur::Should,
            Box::new(BoostQuery::new(Box::new(fuzzy), FUZZY_BOOST)),
        ));
    }
    BooleanQuery::new(alternatives)
}

/// Up to `limit` distinct product names whose words start with `q`'s words (the last one as a
/// prefix), best match first.
pub fn complete_names(index: &SearchIndex, q: &str, limit: usize) -> tantivy::Result<Vec<String>> {
    let f = index.fields;
    let words = tokens(q, false);
    if words.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let terms = words
        .iter()
        .take(MAX_WORDS)
        .map(|w| Term::from_field_text(f.name_words, w))
        .collect();
    let mut phrase = PhrasePrefixQuery::new(terms);
    phrase.set_max_expansions(200);
    let query = BooleanQuery::new(vec![
        (Occur::Must, visible(f)),
        (Occur::Must, Box::new(phrase)),
    ]);
    let searcher = index.reader.searcher();
    let top = searcher.search(
        &query,
        &TopDocs::with_limit(limit * 4).tweak_score(
            SortKeys {
                sort: Sort::Relevance,
            }
            .into_fn(),
        ),
    )?;
    let mut names: Vec<String> = Vec::with_capacity(limit);
    for (_, address) in top {
        let doc: TantivyDocument = searcher.doc(address)?;
        let Some(name) = doc.get_first(f.display_name).and_then(|v| v.as_str()) else {
            continue;
        };
        if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.to_owned());
        }
        if names.len() == limit {
            break;
        }
    }
    Ok(names)
}

/// Whether `name`'s words start with `q`'s words, the last one as a prefix.
pub fn words_match_prefix(name: &str, q: &str) -> bool {
    let wanted = tokens(q, false);
    let Some((last, before)) = wanted.split_last() else {
        return false;
    };
    let have = tokens(name, false);
    (0..have.len()).any(|start| {
        have.len() - start >= wanted.len()
            && have[start..start + before.len()] == *before
            && have[start + before.len()].starts_with(last.as_str())
    })
}

/// How hits are ordered: higher keys first. The score (rounded, so that tiny differences in
/// term statistics between two builds of the same catalog do not reorder hits) or the sort
/// field, then newest, then a per-product tie-breaker.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct SortKey {
    primary: i64,
    created: i64,
    tie: u64,
    score: Score,
}

struct SortKeys {
    sort: Sort,
}

impl SortKeys {
    #[allow(clippy::type_complexity)]
    fn into_fn(
        self,
    ) -> impl Fn(&SegmentReader) -> Box<dyn Fn(DocId, Score) -> SortKey> + Send + Sync + 'static
    {
        let sort = self.sort;
        move |segment: &SegmentReader| {
            let fast = segment.fast_fields();
            let column = |name: &str| -> Option<Column<i64>> { fast.i64(name).ok() };
            let price = column("price");
            let created = column("created");
            let tie = fast.u64("tie").ok();
            Box::new(move |doc: DocId, score: Score| {
                let price = price.as_ref().and_then(|c| c.first(doc)).unwrap_or(0);
                let created = created.as_ref().and_then(|c| c.first(doc)).unwrap_or(0);
                let primary = match sort {
                    Sort::Relevance => (f64::from(score) * 1000.0).round() as i64,
                    Sort::PriceAsc => -price,
                    Sort::PriceDesc => price,
                    Sort::Newest => created,
                };
                SortKey {
                    primary,
                    created,
                    tie: tie.as_ref().and_then(|c| c.first(doc)).unwrap_or(0),
                    score,
                }
            })
        }
    }
}

/// Counts hits per category and price bucket.
struct FacetCollector;

struct FacetSegment {
    categories: Option<StrColumn>,
    prices: Option<Column<i64>>,
    by_ordinal: Vec<u64>,
    uncategorised: u64,
    buckets: [u64; PRICE_BUCKETS.len()],
}

/// A segment's counts, keyed by category text ("" for none).
struct SegmentFacets {
    categories: HashMap<String, u64>,
    buckets: [u64; PRICE_BUCKETS.len()],
}

impl Collector for FacetCollector {
    type Fruit = Facets;
    type Child = FacetSegment;

    fn for_segment(&self, _: u32, segment: &SegmentReader) -> tantivy::Result<FacetSegment> {
        let categories = segment.fast_fields().str("category")?;
        let terms = categories
            .as_ref()
            .map_or(0, |c| c.dictionary().num_terms());
        Ok(FacetSegment {
            categories,
            prices: segment.fast_fields().i64("price").ok(),
            by_ordinal: vec![0; terms],
            uncategorised: 0,
            buckets: [0; PRICE_BUCKETS.len()],
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, segments: Vec<SegmentFacets>) -> tantivy::Result<Facets> {
        let mut categories: HashMap<String, u64> = HashMap::new();
        let mut prices = [0; PRICE_BUCKETS.len()];
        for segment in segments {
            for (category, count) in segment.categories {
                *categories.entry(category).or_default() += count;
            }
            for (total, count) in prices.iter_mut().zip(segment.buckets) {
                *total += count;
            }
        }
        let mut categories: Vec<(Option<Uuid>, u64)> = categories
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(id, count)| (Uuid::parse_str(&id).ok(), count))
            .collect();
        categories.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(Facets { categories, prices })
    }
}

impl SegmentCollector for FacetSegment {
    type Fruit = SegmentFacets;

    fn collect(&mut self, doc: DocId, _: Score) {
        match self.categories.as_ref().and_then(|c| c.ords().first(doc)) {
            Some(ord) => {
                if let Some(count) = self.by_ordinal.get_mut(ord as usize) {
                    *count += 1;
                }
            }
            None => self.uncategorised += 1,
        }
        if let Some(price) = self.prices.as_ref().and_then(|p| p.first(doc)) {
            let bucket = PRICE_BUCKETS.partition_point(|start| *start <= price);
            self.buckets[bucket.saturating_sub(1)] += 1;
        }
    }

    fn harvest(self) -> SegmentFacets {
        let mut categories = HashMap::new();
        if let Some(column) = &self.categories {
            let mut text = String::new();
            for (ord, count) in self.by_ordinal.iter().enumerate() {
                if *count > 0 && column.ord_to_str(ord as u64, &mut text).unwrap_or(false) {
                    *categories.entry(text.clone()).or_default() += *count;
                }
            }
        }
        if self.uncategorised > 0 {
            *categories.entry(String::new()).or_default() += self.uncategorised;
        }
        SegmentFacets {
            categories,
            buckets: self.buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_dropped_unless_nothing_else_is_left() {
        assert_eq!(query_words("Shoes for Men"), ["shoes", "men"]);
        assert_eq!(query_words("the"), ["the"]);
        assert_eq!(query_words(&"x y ".repeat(20)).len(), MAX_WORDS);
    }

    #[test]
    fn prefixes_match_word_starts_in_order() {
        assert!(words_match_prefix("Running Shoes", "run"));
        assert!(words_match_prefix("Trail Running Shoes", "running sh"));
        assert!(!words_match_prefix("Running Shoes", "shoes run"));
        assert!(!words_match_prefix("Running Shoes", "unning"));
        assert!(!words_match_prefix("Running Shoes", "  "));
    }
}
