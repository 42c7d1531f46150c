//! The rule file: how the WAF is tuned without a rebuild.
//!
//! ```toml
//! mode = "block"            # "block", "detect" (log only) or "off"
//! paranoia_level = 1        # 1..=4: higher runs more (and stricter) rules
//! anomaly_threshold = 5     # the score at which a request is blocked
//! disabled_rules = ["920340", "941100-941199"]
//!
//! [[exclusions]]            # rules that do not apply to some values of some routes
//! path_prefix = "/auth/"
//! methods = ["POST"]        # optional: every method when absent
//! rules = ["930000-944999"] # optional: every rule when absent
//! args = ["password"]       # optional: the whole request when absent
//! ```
//!
//! The defaults ship in `edge/meridian-edge/waf.toml`; `MERIDIAN_EDGE_WAF_RULES` names another.

use std::ops::RangeInclusive;

use serde::Deserialize;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Requests at or over the threshold get a 403.
    Block,
    /// Requests at or over the threshold are logged and forwarded.
    Detect,
    Off,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    mode: Mode,
    #[serde(default = "default_paranoia")]
    paranoia_level: u8,
    #[serde(default = "default_threshold")]
    anomaly_threshold: u32,
    #[serde(default)]
    disabled_rules: Vec<String>,
    #[serde(default)]
    exclusions: Vec<ExclusionFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExclusionFile {
    path_prefix: String,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    rules: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
}

fn default_paranoia() -> u8 {
    1
}

fn default_threshold() -> u32 {
    5
}

/// The parsed rule file.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub paranoia_level: u8,
    pub anomaly_threshold: u32,
    pub disabled: Vec<RangeInclusive<u32>>,
    pub exclusions: Vec<Exclusion>,
}

/// Rules that do not apply to (some values of) the requests of one route.
#[derive(Debug, Clone)]
pub struct Exclusion {
    pub path_prefix: String,
    /// Uppercase method names; empty: every method.
    pub methods: Vec<String>,
    /// Empty: every rule.
    pub rules: Vec<RangeInclusive<u32>>,
    /// Argument, cookie or header names (ASCII case-insensitive); empty: the whole request.
    pub args: Vec<String>,
}

impl Exclusion {
    pub fn applies_to(&self, method: &str, path: &str) -> bool {
        path.starts_with(&self.path_prefix)
            && (self.methods.is_empty() || self.methods.iter().any(|m| m == method))
    }

    pub fn covers(&self, rule: u32, name: &str) -> bool {
        (self.rules.is_empty() || self.rules.iter().any(|r| r.contains(&rule)))
            && (self.args.is_empty() || self.args.iter().any(|a| a.eq_ignore_ascii_case(name)))
    }
}

impl Config {
    /// The rule file shipped with the edge.
    pub fn default_file() -> &'static str {
        include_str!("../../waf.toml")
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let file: File = toml::from_str(text).map_err(|error| error.to_string())?;
        if !(1..=4).contains(&file.paranoia_level) {
            return Err("paranoia_level must be 1, 2, 3 or 4".into());
        }
        if file.anomaly_threshold == 0 {
            return Err("anomaly_threshold must be at least 1".into());
        }
        let exclusions = file
            .exclusions
            .into_iter()
            .map(|e| {
                if !e.path_prefix.starts_with('/') {
                    return Err(format!(
                        "exclusion path_prefix {:?} must start with /",
                        e.path_prefix
                    ));
                }
                Ok(Exclusion {
                    path_prefix: e.path_prefix,
                    methods: e.methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
                    rules: ranges(&e.rules)?,
                    args: e.args,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Config {
            mode: file.mode,
            paranoia_level: file.paranoia_level,
            anomaly_threshold: file.anomaly_threshold,
            disabled: ranges(&file.disabled_rules)?,
            exclusions,
        })
    }
}

/// `"942100"` or `"941000-941999"`.
fn ranges(specs: &[String]) -> Result<Vec<RangeInclusive<u32>>, String> {
    specs
        .iter()
        .map(|spec| {
            let bad = || format!("rule {spec:?} is neither an id nor a range lo-hi");
            let (lo, hi) = spec.split_once('-').unwrap_or((spec, spec));
            let lo: u32 = lo.trim().parse().map_err(|_| bad())?;
            let hi: u32 = hi.trim().parse().map_err(|_| bad())?;
            if lo > hi {
                return Err(bad());
            }
            Ok(lo..=hi)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_parses() {
        let config = Config::parse(Config::default_file()).unwrap();
        assert_eq!(config.mode, Mode::Block);
        assert_eq!(config.paranoia_level, 1);
    }

    #[test]
    fn mistakes_are_named() {
        assert!(Config::parse("mode = \"block\"\nparanoia_level = 5").is_err());
        assert!(Config::parse("mode = \"blok\"").is_err());
        assert!(Config::parse("mode = \"block\"\ndisabled_rules = [\"9x\"]").is_err());
        assert!(Config::parse("mode = \"block\"\nunknown = 1").is_err());
        let config = Config::parse(
            "mode = \"detect\"\n[[exclusions]]\npath_prefix = \"/auth/\"\nrules = [\"942000-942999\"]\nargs = [\"password\"]",
        )
        .unwrap();
        let exclusion = &config.exclusions[0];
        assert!(exclusion.applies_to("POST", "/auth/login"));
        assert!(exclusion.covers(942100, "Password"));
        assert!(!exclusion.covers(941100, "password"));
        assert!(!exclusion.covers(942100, "email"));
    }
}
