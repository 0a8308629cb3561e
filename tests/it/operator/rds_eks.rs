//! RDS and EKS on moto: `status` rows and `provision --dry-run` entries, then in depth
//! (CloudWatch figures, nodegroup version skew, whether the kubeconfig names this cluster).

use super::*;

/// A row whose only complaint is the read moto does not serve (it answers 500 or 404 where
/// AWS answers; tests/it/mocks_status.rs has the AWS answers): on AWS this row is ok.
fn only_what_moto_does_not_serve(row: &Value, what: &str, action: &str) {
    assert_eq!(row["state"], "warn", "{row}");
    let hint = row["hint"].as_str().unwrap();
    assert!(
        hint.starts_with(&format!("cannot read {what}: AWS unavailable: {action}:")),
        "{row}"
    );
    assert_eq!(hint.matches("cannot read").count(), 1, "{row}");
}

/// RDS and EKS belong to Terraform: `status` reads their state into rows and `provision
/// --dry-run` lists them as `exists`, both through the one reader in `cloud`; an instance
/// or cluster that is not there is a failed row saying so, not an AWS error text.
#[tokio::test]
async fn status_and_provision_read_rds_and_eks() {
    let Some(moto) = support::service("LATAMCTL_TEST_MOTO_URL") else {
        return;
    };
    let sdk = super::cloud::moto_sdk(&moto).await;
    let suffix = &Uuid::new_v4().simple().to_string()[..8];
    let (db, cluster) = (format!("db{suffix}"), format!("eks{suffix}"));
    aws_sdk_rds::Client::new(&sdk)
        .create_db_instance()
        .db_instance_identifier(&db)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .master_username("app")
        .master_user_password("not-a-secret-1")
        .allocated_storage(20)
        .send()
        .await
        .unwrap();
    aws_sdk_eks::Client::new(&sdk)
        .create_cluster()
        .name(&cluster)
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let dir = support::tempdir();
    let env: Vec<(&str, String)> = aws_env(&moto);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let rows = |db: &str, cluster: &str| {
        let config = format!(
            "name = \"rds{suffix}\"\n[aws]\nregion = \"us-east-1\"\nrds_instance_id = \"{db}\"\neks_cluster = \"{cluster}\"\n"
        );
        std::fs::write(dir.path().join("latamctl.toml"), config).unwrap();
        let (_, out, err) = support::run(
            &["status", "-o", "json", "--no-kubernetes", "--window", "0s"],
            &envs,
            dir.path(),
        );
        let report = json(&format!("{out}{}", if out.is_empty() { &err } else { "" }));
        let find = |component: &str| {
            report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["component"] == component)
                .unwrap_or_else(|| panic!("no {component} row: {report}"))
                .clone()
        };
        (find("rds"), find("eks"))
    };

    let (rds, eks) = rows(&db, &cluster);
    only_what_moto_does_not_serve(
        &rds,
        "the pending maintenance",
        "rds:DescribePendingMaintenanceActions",
    );
    assert_eq!(rds["figures"]["status"], "available");
    assert_eq!(rds["figures"]["engine"], "postgres");
    only_what_moto_does_not_serve(&eks, "the add-ons", "eks:ListAddons");
    assert_eq!(eks["figures"]["status"], "ACTIVE");

    let (code, out, err) =
        support::run(&["provision", "--dry-run", "-o", "json"], &envs, dir.path());
    assert!(code == 0 || code == 1, "{err}");
    let plan = json(&out);
    let row = |resource: &str| {
        plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["resource"] == resource)
            .unwrap_or_else(|| panic!("no {resource} in {plan}"))
            .clone()
    };
    assert_eq!(row("rds instance")["action"], "exists", "{plan}");
    assert_eq!(row("eks cluster")["action"], "exists", "{plan}");
    // Seed 4.2's disk signal: with an instance to watch, provision owns its free-storage
    // alarm as the Terraform alarms module declares it (10 % of 20 GiB is under the 2 GiB floor).
    let storage = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["resource"] == "cloudwatch alarm"
                && c["name"]
                    .as_str()
                    .unwrap()
                    .ends_with("-rds-free-storage-low")
        })
        .unwrap_or_else(|| panic!("no RDS free-storage alarm in {plan}"))
        .clone();
    assert_eq!(storage["action"], "create", "{storage}");
    assert_eq!(storage["desired"]["MetricName"], "FreeStorageSpace");
    assert_eq!(storage["desired"]["Threshold"], (2u64 << 30).to_string());
    assert_eq!(
        storage["desired"]["Dimensions"],
        format!("DBInstanceIdentifier={db}")
    );

    let (rds, eks) = rows("absent-db", "absent-cluster");
    assert_eq!(rds["state"], "fail", "{rds}");
    assert!(rds["hint"].as_str().unwrap().contains("not found"), "{rds}");
    assert_eq!(eks["state"], "fail", "{eks}");
    assert!(eks["hint"].as_str().unwrap().contains("not found"), "{eks}");

    // The kubeconfig context must be this cluster: its server against DescribeCluster's
    // endpoint (the Kubernetes rows themselves fail here: nothing answers at either address).
    let endpoint = aws_sdk_eks::Client::new(&sdk)
        .describe_cluster()
        .name(&cluster)
        .send()
        .await
        .unwrap()
        .cluster
        .unwrap()
        .endpoint
        .expect("moto gives the cluster an endpoint");
    let eks_row = |server: &str| {
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("latamctl.toml"),
            format!("name = \"rds{suffix}\"\n[aws]\nregion = \"us-east-1\"\neks_cluster = \"{cluster}\"\n[status]\ncheck_timeout = \"2s\"\n"),
        )
        .unwrap();
        let mut with_kube = envs.clone();
        let kubeconfig = kubeconfig.display().to_string();
        with_kube.push(("KUBECONFIG", kubeconfig.as_str()));
        let (_, out, err) = support::run(
            &["status", "-o", "json", "--window", "0s"],
            &with_kube,
            dir.path(),
        );
        let report = json(&format!("{out}{}", if out.is_empty() { &err } else { "" }));
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["component"] == "eks")
            .unwrap_or_else(|| panic!("no eks row: {report}"))
            .clone()
    };
    let same = eks_row(&format!("{}:443/", endpoint.trim_end_matches('/')));
    only_what_moto_does_not_serve(&same, "the add-ons", "eks:ListAddons");
    assert_eq!(same["figures"]["kubeconfig"], "this cluster", "{same}");
    let other = eks_row("https://another-cluster.gr7.us-east-1.eks.amazonaws.com");
    assert_eq!(other["state"], "fail", "{other}");
    assert!(
        other["hint"]
            .as_str()
            .unwrap()
            .contains("pointed at another cluster"),
        "{other}"
    );
}

/// RDS and EKS in depth on moto: CPU, storage against the allocated size, connections
/// against the class's max_connections (CloudWatch), a nodegroup's status and version skew.
#[tokio::test]
async fn status_reads_rds_and_eks_in_depth() {
    let Some(moto) = support::service("LATAMCTL_TEST_MOTO_URL") else {
        return;
    };
    let sdk = super::cloud::moto_sdk(&moto).await;
    let suffix = &Uuid::new_v4().simple().to_string()[..8];
    let (db, cluster) = (format!("dd{suffix}"), format!("ed{suffix}"));
    aws_sdk_rds::Client::new(&sdk)
        .create_db_instance()
        .db_instance_identifier(&db)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .master_username("latam")
        .master_user_password("secret-password")
        .allocated_storage(20)
        .send()
        .await
        .unwrap();
    let eks = aws_sdk_eks::Client::new(&sdk);
    eks.create_cluster()
        .name(&cluster)
        .version("1.30")
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    eks.create_nodegroup()
        .cluster_name(&cluster)
        .nodegroup_name("old")
        .version("1.28")
        .node_role("arn:aws:iam::123456789012:role/node")
        .subnets("subnet-1")
        .send()
        .await
        .unwrap();
    let dir = support::tempdir();
    std::fs::write(
        dir.path().join("latamctl.toml"),
        format!("name = \"dd{suffix}\"\n[aws]\nregion = \"us-east-1\"\nrds_instance_id = \"{db}\"\neks_cluster = \"{cluster}\"\n"),
    )
    .unwrap();
    let env: Vec<(&str, String)> = aws_env(&moto);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let rows = || {
        let (code, out, err) = support::run(
            &["status", "-o", "json", "--no-kubernetes", "--window", "0s"],
            &envs,
            dir.path(),
        );
        let report = json(&format!("{out}{}", if out.is_empty() { &err } else { "" }));
        let find = |component: &str| {
            report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["component"] == component)
                .unwrap_or_else(|| panic!("no {component} row: {report}"))
                .clone()
        };
        (code, find("rds"), find("eks"))
    };

    // No datapoints yet: shown as such, not a failure. The nodegroup two minors behind warns.
    // moto serves neither DescribePendingMaintenanceActions nor the EKS add-on calls (it
    // answers 500/404): the rows say they could not be read, and nothing else is wrong. The
    // answers of the real APIs are in tests/it/mocks_status.rs.
    let (_, rds, eks) = rows();
    only_what_moto_does_not_serve(
        &rds,
        "the pending maintenance",
        "rds:DescribePendingMaintenanceActions",
    );
    assert!(
        eks["hint"]
            .as_str()
            .unwrap()
            .contains("cannot read the add-ons: AWS unavailable: eks:ListAddons"),
        "{eks}"
    );
    assert_eq!(rds["figures"]["cpu"], "no data", "{rds}");
    assert_eq!(eks["figures"]["nodegroups"], "1", "{eks}");
    assert_eq!(eks["figures"]["nodegroup old"], "ACTIVE 1.28", "{eks}");
    assert_eq!(eks["state"], "warn", "{eks}");
    assert!(
        eks["hint"]
            .as_str()
            .unwrap()
            .contains("more than one minor behind"),
        "{eks}"
    );

    // The instance is busy, nearly full and near its connection limit.
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    for (metric, value) in [
        ("CPUUtilization", 95.0),
        ("FreeStorageSpace", 1024.0 * 1024.0 * 1024.0),
        ("DatabaseConnections", 100.0),
    ] {
        cw.put_metric_data()
            .namespace("AWS/RDS")
            .metric_data(
                aws_sdk_cloudwatch::types::MetricDatum::builder()
                    .metric_name(metric)
                    .dimensions(
                        aws_sdk_cloudwatch::types::Dimension::builder()
                            .name("DBInstanceIdentifier")
                            .value(&db)
                            .build(),
                    )
                    .value(value)
                    .timestamp(aws_smithy_types::DateTime::from(
                        std::time::SystemTime::now(),
                    ))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let (code, rds, _) = rows();
    assert_eq!(code, 2, "{rds}");
    assert_eq!(rds["state"], "fail", "{rds}");
    assert_eq!(rds["figures"]["cpu"], "95%", "{rds}");
    assert_eq!(
        rds["figures"]["storage"], "95% used (1.0 of 20 GiB free)",
        "{rds}"
    );
    assert_eq!(rds["figures"]["connections"], "100/~112", "{rds}");
    let hint = rds["hint"].as_str().unwrap();
    for words in [
        "RDS CPU 95%",
        "RDS storage 95% used",
        "100 connections of ~112",
    ] {
        assert!(hint.contains(words), "{words}: {rds}");
    }
}
