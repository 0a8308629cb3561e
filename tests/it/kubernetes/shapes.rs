//! Every values file's render: all ready, then each failure `status` names, one at a time.

use super::*;

/// A failure injected into a healthy cluster: which row must show it, in which state, with
/// which words in its hint.
struct Fault {
    what: &'static str,
    component: &'static str,
    state: &'static str,
    exit: i32,
    hint: Vec<String>,
}

#[test]
fn status_reads_every_shape_the_chart_deploys() {
    let Some(python) = support::service("LATAMCTL_TEST_HELM_PYTHON") else {
        return;
    };
    let h = Harness::start();
    let status = h.status();
    let mut covered = Vec::new();
    let mut cases: Vec<(String, PathBuf, Vec<&str>)> = values_files(&h.dir)
        .into_iter()
        .map(|(label, file)| (label, file, Vec::new()))
        .collect();
    // The chart's other Rollout strategy, which no values file in the repo picks: prod's
    // values with blue-green (behind a non-ALB ingress, which Argo Rollouts requires).
    cases.push((
        "deploy/gitops/prod/values.yaml with rollout.strategy=blueGreen".into(),
        root().join("deploy/gitops/prod/values.yaml"),
        vec!["rollout.strategy=blueGreen", "api.ingress.className=nginx"],
    ));
    for (label, file, sets) in cases {
        let values: Value = serde_saphyr::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let rendered = render(&python, &[&file], &sets, "latamctl");
        let release = Release::from_values("latamctl", &values);
        let base = healthy(&rendered);
        h.cluster.load(base.clone());

        // All ready: every row ok, exit 0.
        let (code, report) = status.run(&release, None);
        assert_eq!(
            code,
            0,
            "{label}: all ready must exit 0: {:?}",
            not_ok(&report)
        );
        for component in &release.components {
            let r = row(&report, &format!("k8s {component}"));
            assert_eq!(
                r["figures"]["ready"].as_str().unwrap().split('/').next(),
                r["figures"]["ready"].as_str().unwrap().split('/').nth(1),
                "{label}: {r}"
            );
        }
        let has = |kind: &str| rendered.iter().any(|o| o["kind"] == kind);
        if has("Rollout") {
            let r = row(&report, "k8s api");
            assert!(
                r["figures"]["workload"]
                    .as_str()
                    .unwrap()
                    .starts_with("rollout "),
                "{label}: {r}"
            );
            assert_eq!(r["figures"]["phase"], "Healthy", "{label}");
            assert!(
                r["figures"]["analysis"]
                    .as_str()
                    .unwrap()
                    .ends_with("Successful"),
                "{label}: {r}"
            );
            let blue_green = rendered
                .iter()
                .any(|o| o["kind"] == "Rollout" && o["spec"]["strategy"]["blueGreen"].is_object());
            if blue_green {
                assert_eq!(
                    r["figures"]["active"], "latamctl-api-5d8f7c9b4",
                    "{label}: {r}"
                );
                assert!(r["figures"].get("step").is_none(), "{label}: {r}");
            } else {
                assert!(
                    r["figures"]["step"].as_str().unwrap().contains('/'),
                    "{label}: {r}"
                );
            }
        }
        if has("ScaledObject") {
            let r = row(&report, "k8s worker");
            assert!(
                r["figures"]["hpa"]
                    .as_str()
                    .unwrap()
                    .starts_with("keda-hpa-"),
                "{label}: KEDA's HPA found by its target: {r}"
            );
            assert!(
                r["figures"]["scaledobject"]
                    .as_str()
                    .unwrap()
                    .contains("ready=True"),
                "{label}: {r}"
            );
        }

        // Each failure, one at a time, on the objects the chart rendered.
        let component = release.components[0];
        let workload_name = |c: &str| -> String {
            ["Rollout", "Deployment"]
                .iter()
                .find_map(|k| {
                    h.cluster.find(k, |o| {
                        o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
                            == c
                    })
                })
                .unwrap()["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let pod_of = |c: &str| -> String {
            h.cluster
                .find("Pod", |o| {
                    o["metadata"]["labels"]["app.kubernetes.io/component"] == c
                })
                .unwrap()["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let mut faults: Vec<(Fault, Box<dyn Fn()>)> = Vec::new();
        for reason in [
            "ImagePullBackOff",
            "ErrImagePull",
            "CreateContainerConfigError",
            "CrashLoopBackOff",
        ] {
            let cluster = h.cluster.clone();
            let pod = pod_of(component);
            faults.push((
                Fault {
                    what: reason,
                    component,
                    state: "fail",
                    exit: 2,
                    hint: vec![pod.clone(), reason.into()],
                },
                Box::new(move || {
                    cluster.edit("Pod", Some(&pod), |p| {
                        p["status"]["containerStatuses"][0]["state"] =
                            json!({"waiting": {"reason": reason, "message": "injected"}});
                        p["status"]["containerStatuses"][0]["ready"] = json!(false);
                    })
                }),
            ));
        }
        {
            let cluster = h.cluster.clone();
            let pod = pod_of(component);
            faults.push((
                Fault {
                    what: "OOMKilled",
                    component,
                    state: "fail",
                    exit: 2,
                    hint: vec![pod.clone(), "OOMKilled".into()],
                },
                Box::new(move || {
                    cluster.edit("Pod", Some(&pod), |p| {
                        p["status"]["containerStatuses"][0]["restartCount"] = json!(3);
                        p["status"]["containerStatuses"][0]["lastState"] =
                            json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}});
                    })
                }),
            ));
        }
        {
            let cluster = h.cluster.clone();
            let pod = pod_of(component);
            faults.push((
                Fault {
                    what: "Unschedulable",
                    component,
                    state: "fail",
                    exit: 2,
                    hint: vec![
                        pod.clone(),
                        "unschedulable".into(),
                        "Insufficient cpu".into(),
                    ],
                },
                Box::new(move || {
                    cluster.edit("Pod", Some(&pod), |p| {
                        p["status"] = json!({"phase": "Pending", "conditions": [{
                            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": "0/3 nodes are available: 3 Insufficient cpu."}]});
                    })
                }),
            ));
        }
        if has("Rollout") {
            let name = workload_name("api");
            let n = name.clone();
            let cluster = h.cluster.clone();
            faults.push((
                Fault {
                    what: "Rollout Degraded and aborted",
                    component: "api",
                    state: "fail",
                    exit: 2,
                    hint: vec![
                        "aborted".into(),
                        "RolloutAborted".into(),
                        format!("kubectl argo rollouts get rollout {name}"),
                    ],
                },
                Box::new(move || {
                    cluster.edit("Rollout", Some(&n), |r| {
                        r["status"]["phase"] = json!("Degraded");
                        r["status"]["abort"] = json!(true);
                        r["status"]["message"] =
                            json!("RolloutAborted: metric \"error-ratio\" assessed Failed");
                    })
                }),
            ));
            let n = name.clone();
            let cluster = h.cluster.clone();
            faults.push((
                Fault {
                    what: "Rollout Paused",
                    component: "api",
                    state: "warn",
                    exit: 1,
                    hint: vec![
                        format!("kubectl argo rollouts promote {name} -n {NAMESPACE}"),
                        format!("kubectl argo rollouts abort {name} -n {NAMESPACE}"),
                    ],
                },
                Box::new(move || {
                    cluster.edit("Rollout", Some(&n), |r| {
                        r["status"]["phase"] = json!("Paused");
                        r["status"]["currentStepIndex"] = json!(1);
                    })
                }),
            ));
            if has("AnalysisTemplate") {
                let metric = rendered
                    .iter()
                    .find(|o| o["kind"] == "AnalysisTemplate")
                    .unwrap()["spec"]["metrics"][0]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let m = metric.clone();
                let cluster = h.cluster.clone();
                faults.push((
                    Fault {
                        what: "AnalysisRun Failed",
                        component: "api",
                        state: "fail",
                        exit: 2,
                        hint: vec!["analysis".into(), format!("on metric {metric}")],
                    },
                    Box::new(move || {
                        cluster.edit("AnalysisRun", None, |a| {
                            a["status"]["phase"] = json!("Failed");
                            a["status"]["metricResults"][0]["phase"] = json!("Failed");
                            assert_eq!(a["status"]["metricResults"][0]["name"], m.as_str());
                        })
                    }),
                ));
            }
        }
        let hpas: Vec<Value> = base
            .iter()
            .filter(|o| o["kind"] == "HorizontalPodAutoscaler")
            .cloned()
            .collect();
        for hpa in hpas {
            let name = hpa["metadata"]["name"].as_str().unwrap().to_owned();
            let target = hpa["spec"]["scaleTargetRef"]["name"].as_str().unwrap();
            let Some(c) = release
                .components
                .iter()
                .copied()
                .find(|c| target.ends_with(&format!("-{c}")))
            else {
                continue;
            };
            let cluster = h.cluster.clone();
            let n = name.clone();
            faults.push((
                Fault {
                    what: "HPA at maxReplicas",
                    component: c,
                    state: "warn",
                    exit: 1,
                    hint: vec![format!("HPA {name} is at maxReplicas")],
                },
                Box::new(move || {
                    cluster.edit("HorizontalPodAutoscaler", Some(&n), |h| {
                        let max = h["spec"]["maxReplicas"].clone();
                        h["status"] = json!({"currentReplicas": max, "desiredReplicas": max});
                    })
                }),
            ));
        }
        if has("ScaledObject") {
            let cluster = h.cluster.clone();
            faults.push((
                Fault { what: "ScaledObject not ready", component: "worker", state: "warn", exit: 1, hint: vec!["not ready".into(), "AccessDenied".into()] },
                Box::new(move || {
                    cluster.edit("ScaledObject", None, |s| {
                        s["status"]["conditions"][0] = json!({"type": "Ready", "status": "False", "message": "AccessDenied: sqs:GetQueueAttributes"});
                    })
                }),
            ));
        }
        if has("VerticalPodAutoscaler") {
            let vpa = rendered
                .iter()
                .find(|o| o["kind"] == "VerticalPodAutoscaler")
                .unwrap();
            let c = vpa["spec"]["targetRef"]["name"]
                .as_str()
                .unwrap()
                .rsplit('-')
                .next()
                .unwrap()
                .to_owned();
            if let Some(c) = release.components.iter().copied().find(|x| *x == c) {
                let cluster = h.cluster.clone();
                faults.push((
                    Fault {
                        what: "VPA past the limits",
                        component: c,
                        state: "warn",
                        exit: 1,
                        hint: vec!["recommends memory 64Gi, past the limit".into()],
                    },
                    Box::new(move || {
                        cluster.edit("VerticalPodAutoscaler", None, |v| {
                            v["status"]["recommendation"]["containerRecommendations"][0]["target"]
                                ["memory"] = json!("64Gi");
                        })
                    }),
                ));
            }
        }
        for (fault, inject) in &faults {
            h.cluster.load(base.clone());
            inject();
            let (code, report) = status.run(&release, None);
            let r = row(&report, &format!("k8s {}", fault.component));
            assert_eq!(r["state"], fault.state, "{label}: {}: {r:#}", fault.what);
            for words in &fault.hint {
                assert!(
                    r["hint"].as_str().unwrap().contains(words.as_str()),
                    "{label}: {}: hint lacks {words:?}: {r:#}",
                    fault.what
                );
            }
            assert_eq!(
                code,
                fault.exit,
                "{label}: {}: exit code; not ok: {:?}",
                fault.what,
                not_ok(&report)
            );
        }

        // The running image against the expected one.
        h.cluster.load(base.clone());
        let image = h.cluster.find("Pod", |_| true).unwrap()["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_owned();
        let (code, report) = status.run(&release, Some(&image));
        assert_eq!(
            code,
            0,
            "{label}: the expected image {image}: {:?}",
            not_ok(&report)
        );
        let (code, report) = status.run(&release, Some("latamctl:ffffff0"));
        let r = row(&report, &format!("k8s {component}"));
        assert_eq!(
            (code, r["state"].as_str().unwrap()),
            (1, "warn"),
            "{label}: {r:#}"
        );
        assert!(
            r["hint"]
                .as_str()
                .unwrap()
                .contains("expected latamctl:ffffff0"),
            "{label}: {r:#}"
        );

        covered.push(format!("{label}: {} faults", faults.len()));
    }
    eprintln!(
        "status checked against the chart's render of:\n  {}",
        covered.join("\n  ")
    );
}
