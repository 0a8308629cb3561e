//! The EKS row: the control plane, each nodegroup (status, health, version skew), each
//! add-on, and whether the kubeconfig points at this cluster.

use super::{Check, State};
use crate::cloud::{CloudClients, EksAddon};

/// The minor version of `1.30` / `1.30.2-eks-...`.
fn minor(version: &str) -> Option<u32> {
    version
        .split('.')
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Host and port of an API server URL, for comparing a kubeconfig's server with the EKS
/// endpoint (`https://X` and `https://X:443/` are the same server).
fn server_key(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    if host.contains(':') {
        host
    } else {
        format!("{host}:443")
    }
}

/// The EKS row; with `kube_server` (the kubeconfig context's API server), fails when it is not
/// this cluster's endpoint: every Kubernetes row would describe another cluster.
pub(super) async fn check_eks(
    cloud: &CloudClients,
    name: &str,
    kube_server: Option<&str>,
) -> Check {
    match cloud.eks_cluster(name).await {
        Ok(Some(cluster)) => {
            let mut c = Check::new("eks", State::Ok)
                .figure("cluster", name)
                .figure("status", &cluster.status)
                .figure("version", &cluster.version);
            if cluster.status != "ACTIVE" {
                c.worsen(State::Fail, "EKS cluster is not ACTIVE");
            }
            match cloud.eks_nodegroups(name).await {
                Ok(groups) => {
                    c = c.figure("nodegroups", groups.len());
                    for g in &groups {
                        member(
                            &mut c,
                            "nodegroup",
                            &g.name,
                            (&g.status, &g.version),
                            &g.issues,
                            &format!(
                                "`aws eks describe-nodegroup --cluster-name {name} --nodegroup-name {}`",
                                g.name
                            ),
                        );
                        if let (Some(cp), Some(ng)) = (minor(&cluster.version), minor(&g.version))
                            && cp > ng + 1
                        {
                            c.worsen(
                                State::Warn,
                                format!(
                                    "nodegroup {} runs {} against the control plane's {}: more than one minor behind; upgrade it (`aws eks update-nodegroup-version`)",
                                    g.name, g.version, cluster.version
                                ),
                            );
                        }
                    }
                }
                Err(e) => c.worsen(State::Warn, format!("cannot read the nodegroups: {e}")),
            }
            match cloud.eks_addons(name).await {
                Ok(addons) => addons_figures(&mut c, name, &addons),
                Err(e) => c.worsen(State::Warn, format!("cannot read the add-ons: {e}")),
            }
            if let (Some(server), Some(endpoint)) = (kube_server, cluster.endpoint.as_deref()) {
                if server_key(server) == server_key(endpoint) {
                    c = c.figure("kubeconfig", "this cluster");
                } else {
                    c = c.figure("kubeconfig", server);
                    c.worsen(
                        State::Fail,
                        format!(
                            "the kubeconfig context is pointed at another cluster ({server}, not {endpoint}): the k8s rows describe that one; `aws eks update-kubeconfig --name {name}` or set kubernetes.context"
                        ),
                    );
                }
            }
            c
        }
        Ok(None) => Check::new("eks", State::Fail)
            .figure("cluster", name)
            .hint("not found: check aws.eks_cluster or apply terraform/"),
        Err(e) => Check::new("eks", State::Fail)
            .figure("cluster", name)
            .hint(e.to_string()),
    }
}

/// An `addon <name>` figure per add-on. CoreDNS, the VPC CNI and kube-proxy are what every
/// pod's network rests on.
fn addons_figures(c: &mut Check, cluster: &str, addons: &[EksAddon]) {
    c.figures.insert("addons".into(), addons.len().to_string());
    for a in addons {
        member(
            c,
            "add-on",
            &a.name,
            (&a.status, &a.version),
            &a.issues,
            &format!(
                "`aws eks describe-addon --cluster-name {cluster} --addon-name {}`",
                a.name
            ),
        );
    }
}

/// One member of the cluster (a nodegroup, an add-on): a `<kind> <name>` figure with its
/// status and version; ACTIVE is fine, changing (CREATING, UPDATING, DELETING) warns, any
/// other status (DEGRADED, *_FAILED) fails with the command that says why, and health
/// issues warn.
fn member(
    c: &mut Check,
    kind: &str,
    name: &str,
    (status, version): (&str, &str),
    issues: &[String],
    describe: &str,
) {
    let figure = if kind == "add-on" { "addon" } else { kind };
    c.figures
        .insert(format!("{figure} {name}"), format!("{status} {version}"));
    match status {
        "ACTIVE" => {}
        "CREATING" | "UPDATING" | "DELETING" => {
            c.worsen(State::Warn, format!("{kind} {name} is {status}"))
        }
        other => c.worsen(State::Fail, format!("{kind} {name} is {other}: {describe}")),
    }
    if !issues.is_empty() {
        c.worsen(
            State::Warn,
            format!("{kind} {name} health: {}", issues.join("; ")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_versions() {
        assert_eq!(minor("1.30"), Some(30));
        assert_eq!(minor("1.28.5-eks-5e0fdde"), Some(28));
        assert_eq!(minor("x"), None);
    }

    #[test]
    fn servers_compare_by_host_and_port() {
        assert_eq!(
            server_key("https://ABC.eks.amazonaws.com"),
            server_key("https://abc.eks.amazonaws.com:443/")
        );
        assert_ne!(server_key("https://a:6443"), server_key("https://a"));
    }
}
