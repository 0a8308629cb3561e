//! Object names exactly as the chart's `latamctl.fullname` helper makes them
//! (`helm-charts/latamctl/templates/_helpers.tpl`).

use crate::config::KubernetesConfig;

/// The chart's name (`Chart.yaml`), the default of `nameOverride`.
pub const CHART_NAME: &str = "latamctl";

/// Room the chart leaves for the longest suffix ("-dashboards") in a 63-character name.
const FULLNAME_MAX: usize = 52;

/// How one Helm release names its objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub release: String,
    /// The release's `nameOverride` value, if any.
    pub name_override: Option<String>,
    /// The release's `fullnameOverride` value, if any.
    pub fullname_override: Option<String>,
}

impl Names {
    pub fn new(release: impl Into<String>) -> Self {
        Self {
            release: release.into(),
            name_override: None,
            fullname_override: None,
        }
    }

    pub fn from_config(k: &KubernetesConfig) -> Self {
        Self {
            release: k.release.clone(),
            name_override: k.name_override.clone(),
            fullname_override: k.fullname_override.clone(),
        }
    }

    /// The chart's `latamctl.fullname`: `fullnameOverride`; else the release name when it
    /// contains the chart name (or `nameOverride`); else `<release>-<name>`. Truncated to 52
    /// characters, one trailing `-` trimmed (Sprig's `trunc 52 | trimSuffix "-"`).
    pub fn fullname(&self) -> String {
        let non_empty =
            |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
        let full = match non_empty(&self.fullname_override) {
            Some(f) => f,
            None => {
                let name = non_empty(&self.name_override).unwrap_or_else(|| CHART_NAME.to_owned());
                if self.release.contains(&name) {
                    self.release.clone()
                } else {
                    format!("{}-{name}", self.release)
                }
            }
        };
        let cut: String = full.chars().take(FULLNAME_MAX).collect();
        cut.strip_suffix('-').map(str::to_owned).unwrap_or(cut)
    }

    /// `<fullname>-<component>`: the workload, ServiceAccount, HPA and VPA of a component.
    pub fn workload(&self, component: &str) -> String {
        format!("{}-{component}", self.fullname())
    }
}

/// The chart's prefix for a release without overrides.
pub fn fullname(release: &str) -> String {
    Names::new(release).fullname()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_the_chart_helper() {
        assert_eq!(fullname("latamctl"), "latamctl");
        assert_eq!(fullname("prod-latamctl"), "prod-latamctl");
        assert_eq!(fullname("ingest"), "ingest-latamctl");
        let long = "a-very-long-release-name-for-the-ingestion-pipeline-of-latam";
        // Cut at 52, and the cut ends in '-', which goes too.
        assert_eq!(
            Names::new(long).fullname(),
            "a-very-long-release-name-for-the-ingestion-pipeline"
        );
        assert_eq!(Names::new(format!("{long}-x")).fullname().len(), 51);
        let exact = "r".repeat(60);
        assert_eq!(Names::new(exact).fullname(), "r".repeat(52));
        // A cut that ends in '-' loses it.
        let dash = format!("{}-tail", "x".repeat(51));
        assert_eq!(Names::new(dash).fullname(), "x".repeat(51));
        let mut n = Names::new("ingest");
        n.name_override = Some("pipe".into());
        assert_eq!(n.fullname(), "ingest-pipe");
        n.name_override = Some(String::new());
        assert_eq!(n.fullname(), "ingest-latamctl");
        n.fullname_override = Some("edge".into());
        assert_eq!(n.workload("api"), "edge-api");
    }
}
