//! Running inspections: step 12 of the workflow.

use crate::layout::Inspection;
use crate::link::Link;
use crate::record::{self, CommandOptions, RecordOptions};

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
        if inspection.run.is_empty() {
            self.report.inspections.push(report);
            return Err(self.fail(
                Check::Inspection,
                Some(name),
                format!("inspection {name} has no command to run"),
            ));
        }
        let options = RecordOptions {
            base_path: self.options.workdir.clone(),
            limits: self.options.limits,
            ..RecordOptions::default()
        };
        let here = vec![".".to_owned()];
        let materials = match record::record_artifacts(&here, &options) {
            Ok(r) => r.artifacts,
            Err(e) => {
                self.report.inspections.push(report);
                return Err(self.fail(
                    Check::Inspection,
                    Some(name),
                    format!("inspection {name}: recording its materials: {e}"),
                ));
            }
        };
        let command = CommandOptions {
            record_streams: true,
            silent: true,
            timeout: Some(self.options.inspection_timeout),
            current_dir: self.options.workdir.clone(),
            ..CommandOptions::default()
        };
        let outcome = match record::run_command(&inspection.run, &command) {
            Ok(outcome) => outcome,
            Err(e) => {
                self.report.inspections.push(report);
                return Err(self.fail(
                    Check::Inspection,
                    Some(name),
                    format!("inspection {name}: {e}"),
                ));
            }
        };
        report.return_value = Some(outcome.return_value);
        if outcome.return_value != 0 {
            self.report.inspections.push(report);
            return Err(self.fail(
                Check::Inspection,
                Some(name),
                format!(
                    "inspection {name}: {:?} exited with {}",
                    inspection.run, outcome.return_value
                ),
            ));
        }
        let products = match record::record_artifacts(&here, &options) {
            Ok(r) => r.artifacts,
            Err(e) => {
                self.report.inspections.push(report);
                return Err(self.fail(
                    Check::Inspection,
                    Some(name),
                    format!("inspection {name}: recording its products: {e}"),
                ));
            }
        };
        self.report.inspections.push(report);
        Ok(Link {
            name: name.clone(),
            command: inspection.run.clone(),
            materials,
            products,
            byproducts: Default::default(),
            environment: Default::default(),
        })
    }
}
