//! Running inspections: step 12 of the workflow.

use crate::layout::Inspection;
use crate::link::Link;
use crate::record::{self, CommandOptions, RecordOptions};
use crate::rule::RuleKind;

use super::report::{Check, InspectionReport};
use super::{Run, Stop};

impl Run<'_> {
    /// Runs one inspection: records `.` in the working folder, runs the command, records `.`
    /// again. Its link stays in memory: nothing is written over the inputs (THREATS I5).
    pub(super) fn inspect(&mut self, inspection: &Inspection) -> Result<Link, Stop> {
        let name = &inspection.name;
        let mut report = InspectionReport {
            name: name.to_string(),
            run: inspection.run.clone(),
            return_value: None,
            rules: Vec::new(),
        };
        let outcome = self.run_inspection(inspection, &mut report);
        self.report.inspections.push(report);
        outcome.map_err(|reason| {
            self.fail(
                Check::Inspection,
                Some(name),
                format!("inspection {name}{reason}"),
            )
        })
    }

    /// Records `.`, runs the command, records `.` again; `Err` completes the sentence
    /// "inspection NAME…".
    fn run_inspection(
        &self,
        inspection: &Inspection,
        report: &mut InspectionReport,
    ) -> Result<Link, String> {
        if inspection.run.is_empty() {
            return Err(" has no command to run".into());
        }
        let (uris, git_files) = named_uris(inspection);
        let options = RecordOptions {
            base_path: self.options.workdir.clone(),
            limits: self.options.limits,
            // A folder a rule names may appear only when the command has run (`.` is always
            // there).
            allow_missing: true,
            git_files,
            // Its own command may leave files behind; HEAD is what the rules check.
            allow_dirty: true,
            ..RecordOptions::default()
        };
        // The working folder, and the artifacts its rules name by URI (`dir:vendor`), which
        // walking `.` does not produce.
        let mut here = vec![".".to_owned()];
        here.extend(uris);
        let materials = record::record_artifacts(&here, &options)
            .map_err(|e| format!(": recording its materials: {e}"))?
            .artifacts;
        let command = CommandOptions {
            record_streams: true,
            silent: true,
            timeout: Some(self.options.inspection_timeout),
            current_dir: self.options.workdir.clone(),
            ..CommandOptions::default()
        };
        let outcome =
            record::run_command(&inspection.run, &command).map_err(|e| format!(": {e}"))?;
        report.return_value = Some(outcome.return_value);
        if outcome.return_value != 0 {
            return Err(format!(
                ": {:?} exited with {}",
                inspection.run, outcome.return_value
            ));
        }
        let products = record::record_artifacts(&here, &options)
            .map_err(|e| format!(": recording its products: {e}"))?
            .artifacts;
        Ok(Link {
            name: inspection.name.clone(),
            command: inspection.run.clone(),
            materials,
            products,
            byproducts: Default::default(),
            environment: Default::default(),
        })
    }
}

/// What an inspection's rules name under a URI scheme, which walking `.` does not produce:
/// the `dir:` and `oci:` artifacts they name (up to a pattern's first wildcard or `#`) and the
/// `file:` ones they name literally, in the order first named, and
/// `git:HEAD` (with every tracked file if a rule can concern `git:file/...`) when a rule
/// names a `git:` artifact. Also returns whether the files are wanted.
fn named_uris(inspection: &Inspection) -> (Vec<String>, bool) {
    let mut uris: Vec<String> = Vec::new();
    let mut git_files = false;
    let rules = inspection
        .expected_materials
        .iter()
        .chain(&inspection.expected_products);
    for rule in rules {
        let name = match rule.kind() {
            RuleKind::Match {
                pattern,
                source_prefix: None,
                ..
            }
            | RuleKind::Create(pattern)
            | RuleKind::Delete(pattern)
            | RuleKind::Modify(pattern)
            | RuleKind::Allow(pattern) => pattern.as_str().to_owned(),
            RuleKind::Require(name) => name.as_str().to_owned(),
            _ => continue,
        };
        let literal = !name.contains(['*', '?', '[']);
        let uri = match record::Target::of(&name) {
            record::Target::Files(_) => continue,
            record::Target::Git(_) => {
                git_files |= !literal || name.starts_with("git:file/");
                "git:HEAD".to_owned()
            }
            // An image or folder named by a pattern (`oci:dist/image.tar*`, to cover its
            // `#config` and `#layer/N` too): the literal part before the first wildcard or `#`.
            record::Target::Oci(_) | record::Target::Dir(_) => {
                let end = name.find(['*', '?', '[', '#']).unwrap_or(name.len());
                name[..end].to_owned()
            }
            _ if literal => name,
            _ => continue,
        };
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    (uris, git_files)
}
