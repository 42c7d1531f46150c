//! Repository rules, checked by every `cargo test --workspace` (after rust-analyzer's
//! `xtask/src/tidy.rs`).
//!
//! Each rule is a plain function from the parsed workspace (`cargo metadata --no-deps` plus the
//! members' manifests) to a list of violations. The `workspace_*` tests apply the rules to this
//! repository; the `rule_*` tests show on a small synthetic workspace that each rule does fail.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// Core crates that are not services: the composition root and the shared libraries every service
/// may use. Every other member under `core/` is a service.
const CORE_NON_SERVICES: &[&str] = &["meridian-core", "meridian-platform", "meridian-contracts"];

#[derive(Debug, Clone)]
struct Member {
    name: String,
    /// Directory relative to the workspace root with `/` separators, e.g. `core/meridian-users`.
    dir: String,
    /// Names of its targets (lib, bins, tests, ...).
    targets: Vec<String>,
    dependencies: Vec<Dependency>,
    /// The manifest has `lints.workspace = true` (in any TOML spelling).
    lints_workspace: bool,
}

#[derive(Debug, Clone)]
struct Dependency {
    /// Package name.
    name: String,
    /// The name it is imported under, when renamed.
    rename: Option<String>,
    /// `normal`, `dev` or `build`.
    kind: String,
}

impl Member {
    fn is_under(&self, group: &str) -> bool {
        self.dir.starts_with(&format!("{group}/"))
    }

    fn is_core_service(&self) -> bool {
        self.is_under("core") && !CORE_NON_SERVICES.contains(&self.name.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// The rules.

/// (a) No core service depends on another: services share `meridian-contracts` (request/reply on
/// NATS) and `jetstream/` events; only the composition root `meridian-core` knows them all.
fn service_to_service_dependencies(members: &[Member]) -> Vec<String> {
    let services: Vec<&str> = members
        .iter()
        .filter(|member| member.is_core_service())
        .map(|member| member.name.as_str())
        .collect();
    let mut violations = Vec::new();
    for member in members.iter().filter(|member| member.is_core_service()) {
        for dependency in &member.dependencies {
            if dependency.name != member.name && services.contains(&dependency.name.as_str()) {
                violations.push(format!(
                    "core service {} depends on core service {} ({} dependency); go through \
                     meridian-contracts or an event instead",
                    member.name, dependency.name, dependency.kind
                ));
            }
        }
    }
    violations
}

/// (b) Every member is named in ARCHITECTURE.md's code map.
fn members_missing_from_architecture(
    members: &[Member],
    architecture: Option<&str>,
) -> Vec<String> {
    let Some(architecture) = architecture else {
        return vec!["ARCHITECTURE.md is missing at the workspace root".to_owned()];
    };
    members
        .iter()
        .filter(|member| !mentions(architecture, &member.name))
        .map(|member| format!("{} is not mentioned in ARCHITECTURE.md", member.name))
        .collect()
}

/// (c) Every member inherits `[workspace.lints]`.
fn members_without_workspace_lints(members: &[Member]) -> Vec<String> {
    members
        .iter()
        .filter(|member| !member.lints_workspace)
        .map(|member| {
            format!(
                "{} ({}/Cargo.toml) lacks `[lints] workspace = true`",
                member.name, member.dir
            )
        })
        .collect()
}

/// (d) Nothing is called `core`: not a package, not a target, not a renamed dependency (it would
/// shadow Rust's `core`).
fn crates_named_core(members: &[Member]) -> Vec<String> {
    let mut violations = Vec::new();
    for member in members {
        if member.name == "core" {
            violations.push(format!("package `core` in {}", member.dir));
        }
        for target in member.targets.iter().filter(|target| *target == "core") {
            violations.push(format!("{} has a target named `{target}`", member.name));
        }
        for dependency in &member.dependencies {
            if dependency.rename.as_deref() == Some("core") {
                violations.push(format!(
                    "{} imports {} under the name `core`",
                    member.name, dependency.name
                ));
            }
        }
    }
    violations
}

/// (e) Heavy stacks stay in their corner: candle-* only in `ml/`, pingora* only in `edge/`.
fn misplaced_heavy_dependencies(members: &[Member]) -> Vec<String> {
    const CONFINED: &[(&str, &str)] = &[("candle", "ml"), ("pingora", "edge")];
    let mut violations = Vec::new();
    for member in members {
        for dependency in &member.dependencies {
            for (prefix, group) in CONFINED {
                if dependency.name.starts_with(prefix) && !member.is_under(group) {
                    violations.push(format!(
                        "{} ({}) depends on {}; only crates under {group}/ may use {prefix}*",
                        member.name, member.dir, dependency.name
                    ));
                }
            }
        }
    }
    violations
}

/// The one file that may allow unsafe code (the workspace denies it): meridian-embed's CPU
/// encoder, for its call into gemm and its AVX2 dispatch.
const UNSAFE_ALLOWED_IN: &str = "ml/meridian-embed/src/cpu.rs";

/// (f) `allow(unsafe_code)` (or `expect`) appears in [`UNSAFE_ALLOWED_IN`] only; `files` are
/// paths relative to the root with their text.
fn unsafe_code_outside_its_module(files: &[(String, String)]) -> Vec<String> {
    files
        .iter()
        // This file names the spellings it looks for.
        .filter(|(path, _)| path != UNSAFE_ALLOWED_IN && path != "xtask/tests/tidy.rs")
        .filter(|(_, text)| {
            let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            [
                "allow(unsafe_code",
                "expect(unsafe_code",
                "warn(unsafe_code",
            ]
            .iter()
            .any(|spelling| text.contains(spelling))
        })
        .map(|(path, _)| format!("{path} allows unsafe code; only {UNSAFE_ALLOWED_IN} may"))
        .collect()
}

/// Every `.rs` file under `root` (build outputs, local state and VCS data skipped), with its
/// path relative to `root`.
fn rust_files(root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "node_modules" {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs")
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                let relative = path.strip_prefix(root).unwrap_or(&path);
                files.push((relative.to_string_lossy().replace('\\', "/"), text));
            }
        }
    }
    files
}

/// Whether `text` names `name` as a whole word (`meridian-core` does not count for
/// `meridian-core-extra`).
fn mentions(text: &str, name: &str) -> bool {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(name).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + name.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

// ---------------------------------------------------------------------------------------------
// Reading the workspace.

/// Builds the members from `cargo metadata --format-version 1 --no-deps`; `read_manifest` gives a
/// manifest's text (for the lints, which metadata does not report).
fn parse_metadata(
    metadata: &Value,
    read_manifest: impl Fn(&Path) -> Option<String>,
) -> Result<Vec<Member>, String> {
    let root = metadata["workspace_root"]
        .as_str()
        .ok_or("metadata has no workspace_root")?;
    let member_ids: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .ok_or("metadata has no workspace_members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let packages = metadata["packages"]
        .as_array()
        .ok_or("metadata has no packages")?;
    let mut members = Vec::new();
    for package in packages {
        let id = package["id"].as_str().unwrap_or_default();
        if !member_ids.contains(&id) {
            continue;
        }
        let name = package["name"]
            .as_str()
            .ok_or_else(|| format!("package {id} has no name"))?
            .to_owned();
        let manifest = Path::new(
            package["manifest_path"]
                .as_str()
                .ok_or_else(|| format!("{name} has no manifest_path"))?,
        );
        let dir = manifest
            .parent()
            .and_then(|dir| dir.strip_prefix(root).ok())
            .ok_or_else(|| format!("{name}'s manifest is outside the workspace root"))?
            .to_string_lossy()
            .replace('\\', "/");
        let targets = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|target| target["name"].as_str().map(str::to_owned))
            .collect();
        let dependencies = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|dependency| {
                Some(Dependency {
                    name: dependency["name"].as_str()?.to_owned(),
                    rename: dependency["rename"].as_str().map(str::to_owned),
                    kind: dependency["kind"].as_str().unwrap_or("normal").to_owned(),
                })
            })
            .collect();
        let lints_workspace =
            read_manifest(manifest).is_some_and(|text| inherits_workspace_lints(&text));
        members.push(Member {
            name,
            dir,
            targets,
            dependencies,
            lints_workspace,
        });
    }
    Ok(members)
}

/// Recognises `[lints]` + `workspace = true`, and top-level `lints.workspace = true` or
/// `lints = { workspace = true }`. A light line scanner: xtask carries no TOML parser.
fn inherits_workspace_lints(manifest: &str) -> bool {
    let mut table = String::new();
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.starts_with('[') {
            table = line.trim_matches(['[', ']']).trim().to_owned();
            continue;
        }
        let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        let inherits = match table.as_str() {
            "lints" => compact == "workspace=true",
            "" => compact == "lints.workspace=true" || compact == "lints={workspace=true}",
            _ => false,
        };
        if inherits {
            return true;
        }
    }
    false
}

struct Workspace {
    root: std::path::PathBuf,
    members: Vec<Member>,
}

fn workspace() -> &'static Workspace {
    static WORKSPACE: OnceLock<Workspace> = OnceLock::new();
    WORKSPACE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives inside the workspace")
            .to_path_buf();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(&root)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .expect("cannot run cargo metadata");
        assert!(
            output.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let metadata: Value =
            serde_json::from_slice(&output.stdout).expect("cargo metadata printed invalid JSON");
        let members = parse_metadata(&metadata, |path| std::fs::read_to_string(path).ok())
            .unwrap_or_else(|error| panic!("cannot read cargo metadata: {error}"));
        assert!(!members.is_empty(), "cargo metadata lists no members");
        Workspace { root, members }
    })
}

#[track_caller]
fn assert_clean(rule: &str, violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "{rule}:\n  {}",
        violations.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// The rules applied to this repository.

#[test]
fn workspace_core_services_do_not_depend_on_each_other() {
    assert_clean(
        "core services must not depend on each other",
        service_to_service_dependencies(&workspace().members),
    );
}

#[test]
fn workspace_members_are_in_architecture_md() {
    let workspace = workspace();
    let architecture = std::fs::read_to_string(workspace.root.join("ARCHITECTURE.md")).ok();
    assert_clean(
        "every crate belongs in ARCHITECTURE.md's code map",
        members_missing_from_architecture(&workspace.members, architecture.as_deref()),
    );
}

#[test]
fn workspace_members_inherit_workspace_lints() {
    assert_clean(
        "every crate inherits [workspace.lints]",
        members_without_workspace_lints(&workspace().members),
    );
}

#[test]
fn workspace_allows_unsafe_code_in_one_module_only() {
    let files = rust_files(&workspace().root);
    assert!(
        files.iter().any(|(path, _)| path == UNSAFE_ALLOWED_IN),
        "{UNSAFE_ALLOWED_IN} is gone: update UNSAFE_ALLOWED_IN"
    );
    assert_clean(
        "unsafe code is denied outside its one module",
        unsafe_code_outside_its_module(&files),
    );
}

#[test]
fn workspace_has_no_crate_named_core() {
    assert_clean(
        "nothing may be called `core`",
        crates_named_core(&workspace().members),
    );
}

#[test]
fn workspace_confines_candle_and_pingora() {
    assert_clean(
        "candle-* belongs to ml/, pingora* to edge/",
        misplaced_heavy_dependencies(&workspace().members),
    );
}

// ---------------------------------------------------------------------------------------------
// Each rule fails on a workspace that breaks it.

fn member(name: &str, dir: &str) -> Member {
    Member {
        name: name.to_owned(),
        dir: dir.to_owned(),
        targets: vec![name.replace('-', "_")],
        dependencies: Vec::new(),
        lints_workspace: true,
    }
}

fn depends_on(mut member: Member, name: &str) -> Member {
    member.dependencies.push(Dependency {
        name: name.to_owned(),
        rename: None,
        kind: "normal".to_owned(),
    });
    member
}

#[test]
fn rule_service_to_service_catches_a_service_importing_another() {
    let members = [
        depends_on(
            depends_on(
                member("meridian-users", "core/meridian-users"),
                "meridian-contracts",
            ),
            "meridian-catalog",
        ),
        member("meridian-catalog", "core/meridian-catalog"),
        member("meridian-contracts", "core/meridian-contracts"),
        // The composition root may depend on every service.
        depends_on(
            member("meridian-core", "core/meridian-core"),
            "meridian-users",
        ),
    ];
    let violations = service_to_service_dependencies(&members);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("meridian-users depends on core service meridian-catalog"));
}

#[test]
fn rule_architecture_catches_an_unmentioned_crate_and_a_missing_file() {
    let members = [
        member("meridian-core", "core/meridian-core"),
        member("meridian-core-extra", "core/meridian-core-extra"),
    ];
    let architecture = "## Code map\n### `core/meridian-core`\nThe composition root.";
    assert_eq!(
        members_missing_from_architecture(&members, Some(architecture)),
        ["meridian-core-extra is not mentioned in ARCHITECTURE.md"]
    );
    assert_eq!(members_missing_from_architecture(&members, None).len(), 1);
}

#[test]
fn rule_lints_catches_a_crate_without_workspace_lints() {
    let mut loose = member("meridian-loose", "core/meridian-loose");
    loose.lints_workspace = false;
    let members = [member("meridian-core", "core/meridian-core"), loose];
    let violations = members_without_workspace_lints(&members);
    assert_eq!(violations.len(), 1);
    assert!(violations[0].starts_with("meridian-loose"));
}

#[test]
fn rule_core_name_catches_package_target_and_rename() {
    let mut renamed = member("meridian-edge", "edge/meridian-edge");
    renamed.dependencies.push(Dependency {
        name: "meridian-core".to_owned(),
        rename: Some("core".to_owned()),
        kind: "normal".to_owned(),
    });
    let mut target = member("meridian-core", "core/meridian-core");
    target.targets.push("core".to_owned());
    let mut package = member("core", "core");
    package.targets = vec!["lib_under_another_name".to_owned()];
    let members = [package, target, renamed];
    let violations = crates_named_core(&members);
    assert_eq!(violations.len(), 3, "{violations:?}");
}

#[test]
fn rule_heavy_dependencies_catches_candle_and_pingora_outside_their_groups() {
    let members = [
        depends_on(
            member("meridian-ml-embed", "ml/meridian-ml-embed"),
            "candle-core",
        ),
        depends_on(
            member("meridian-edge", "edge/meridian-edge"),
            "pingora-proxy",
        ),
        depends_on(
            member("meridian-search", "core/meridian-search"),
            "candle-nn",
        ),
        depends_on(
            member("meridian-platform", "core/meridian-platform"),
            "pingora",
        ),
    ];
    let violations = misplaced_heavy_dependencies(&members);
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].starts_with("meridian-search"));
    assert!(violations[1].starts_with("meridian-platform"));
}

#[test]
fn rule_unsafe_catches_an_allow_outside_the_encoder() {
    let file = |path: &str, text: &str| (path.to_owned(), text.to_owned());
    let files = [
        file(UNSAFE_ALLOWED_IN, "#[allow(unsafe_code)]\nunsafe { f() }"),
        file("core/meridian-users/src/lib.rs", "#![allow( unsafe_code )]"),
        file(
            "edge/meridian-edge/src/cache.rs",
            "#[expect(unsafe_code, reason = \"x\")]",
        ),
        file("core/meridian-orders/src/lib.rs", "// no unsafe here"),
    ];
    let violations = unsafe_code_outside_its_module(&files);
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].starts_with("core/meridian-users"));
    assert!(violations[1].starts_with("edge/meridian-edge"));
}

#[test]
fn parser_reads_members_dependencies_and_lints() {
    let metadata = serde_json::json!({
        "workspace_root": "/repo",
        "workspace_members": ["users 0.1.0 (path+file:///repo/core/meridian-users)"],
        "packages": [{
            "id": "users 0.1.0 (path+file:///repo/core/meridian-users)",
            "name": "meridian-users",
            "manifest_path": "/repo/core/meridian-users/Cargo.toml",
            "targets": [{"name": "meridian_users"}],
            "dependencies": [
                {"name": "meridian-contracts", "rename": null, "kind": null},
                {"name": "insta", "rename": null, "kind": "dev"},
                {"name": "meridian-core", "rename": "core", "kind": null}
            ]
        }]
    });
    let members = parse_metadata(&metadata, |path| {
        assert_eq!(path, Path::new("/repo/core/meridian-users/Cargo.toml"));
        Some("[package]\nname = \"meridian-users\"\n\n[lints]\nworkspace = true\n".to_owned())
    })
    .unwrap();
    assert_eq!(members.len(), 1);
    let users = &members[0];
    assert_eq!(users.dir, "core/meridian-users");
    assert!(users.is_core_service());
    assert!(users.lints_workspace);
    assert_eq!(users.dependencies[1].kind, "dev");
    assert_eq!(users.dependencies[2].rename.as_deref(), Some("core"));
}

#[test]
fn lints_scanner_knows_the_spellings() {
    assert!(inherits_workspace_lints("[lints]\nworkspace = true\n"));
    assert!(inherits_workspace_lints(
        "lints.workspace = true\n[package]\n"
    ));
    assert!(inherits_workspace_lints("lints = { workspace = true }\n"));
    assert!(!inherits_workspace_lints(
        "[lints.rust]\nworkspace = true\n"
    ));
    assert!(!inherits_workspace_lints(
        "[package]\nlints.workspace = true\n"
    ));
    assert!(!inherits_workspace_lints("[lints]\n# workspace = true\n"));
}
