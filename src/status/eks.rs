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
                        c = c.figure(
                            &format!("nodegroup {}", g.name),
                            format!("{} {}", g.status, g.version),
                        );
                        match g.status.as_str() {
                            "ACTIVE" => {}
                            "CREATING" | "UPDATING" | "DELETING" => c.worsen(
                                State::Warn,
                                format!("nodegroup {} is {}", g.name, g.status),
                            ),
                            other => c.worsen(
                                State::Fail,
                                format!(
                                    "nodegroup {} is {other}: `aws eks describe-nodegroup --cluster-name {name} --nodegroup-name {}`",
                                    g.name, g.name
                                ),
                            ),
                        }
                        if !g.issues.is_empty() {
                            c.worsen(
                                State::Warn,
                                format!("nodegroup {} health: {}", g.name, g.issues.join("; ")),
                            );
                        }
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

/// An `addon <name>` figure per add-on; failed or degraded → fail, changing → warn, health
/// issues → warn. CoreDNS, the VPC CNI and kube-proxy are what every pod's network rests on.
fn addons_figures(c: &mut Check, cluster: &str, addons: &[EksAddon]) {
    c.figures.insert("addons".into(), addons.len().to_string());
    for a in addons {
        c.figures.insert(
            format!("addon {}", a.name),
            format!("{} {}", a.status, a.version),
        );
        let describe = format!(
            "`aws eks describe-addon --cluster-name {cluster} --addon-name {}`",
            a.name
        );
        match a.status.as_str() {
            "ACTIVE" => {}
            "CREATING" | "UPDATING" | "DELETING" => {
                c.worsen(State::Warn, format!("add-on {} is {}", a.name, a.status))
            }
            other => c.worsen(
                State::Fail,
                format!("add-on {} is {other}: {describe}", a.name),
            ),
        }
        if !a.issues.is_empty() {
            c.worsen(
                State::Warn,
                format!("add-on {} health: {}", a.name, a.issues.join("; ")),
            );
        }
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
