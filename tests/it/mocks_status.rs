//! `status`'s RDS and EKS rows on what moto does not serve (add-ons, pending maintenance),
//! with aws-smithy-mocks answering as the real APIs do.

use aws_sdk_eks::types::{
    Addon, AddonHealth, AddonIssue, AddonIssueCode, AddonStatus, Cluster, ClusterStatus, Nodegroup,
    NodegroupStatus,
};
use aws_sdk_rds::types::{DbInstance, PendingMaintenanceAction, ResourcePendingMaintenanceActions};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use latamctl::cloud::CloudClients;
use latamctl::config::Config;
use latamctl::status::{Check, State, Targets, run};
use std::time::{Duration, SystemTime};

const ARN: &str = "arn:aws:rds:us-east-1:123456789012:db:latam-prod-db";

fn days_from_now(days: i64) -> DateTime {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    DateTime::from_secs(now + days * 86_400)
}

/// A healthy db.r6g.large instance; CloudWatch has no datapoints.
fn rds_rules(maintenance: Vec<PendingMaintenanceAction>) -> Vec<Rule> {
    vec![
        mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| {
            aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("latam-prod-db")
                        .db_instance_arn(ARN)
                        .db_instance_status("available")
                        .engine("postgres")
                        .db_instance_class("db.r6g.large")
                        .allocated_storage(100)
                        .multi_az(true)
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_rds::Client::describe_pending_maintenance_actions)
            .match_requests(|req| req.resource_identifier() == Some(ARN))
            .then_output(move || {
                aws_sdk_rds::operation::describe_pending_maintenance_actions::DescribePendingMaintenanceActionsOutput::builder()
                    .pending_maintenance_actions(
                        ResourcePendingMaintenanceActions::builder()
                            .resource_identifier(ARN)
                            .set_pending_maintenance_action_details(Some(maintenance.clone()))
                            .build(),
                    )
                    .build()
            }),
    ]
}

fn eks_rules(addons: Vec<Addon>) -> Vec<Rule> {
    let names: Vec<String> = addons
        .iter()
        .map(|a| a.addon_name.clone().unwrap())
        .collect();
    vec![
        mock!(aws_sdk_eks::Client::describe_cluster).then_output(|| {
            aws_sdk_eks::operation::describe_cluster::DescribeClusterOutput::builder()
                .cluster(
                    Cluster::builder()
                        .name("latam-prod")
                        .status(ClusterStatus::Active)
                        .version("1.31")
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_eks::Client::list_nodegroups).then_output(|| {
            aws_sdk_eks::operation::list_nodegroups::ListNodegroupsOutput::builder()
                .nodegroups("general")
                .build()
        }),
        mock!(aws_sdk_eks::Client::describe_nodegroup).then_output(|| {
            aws_sdk_eks::operation::describe_nodegroup::DescribeNodegroupOutput::builder()
                .nodegroup(
                    Nodegroup::builder()
                        .nodegroup_name("general")
                        .status(NodegroupStatus::Active)
                        .version("1.31")
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_eks::Client::list_addons).then_output(move || {
            aws_sdk_eks::operation::list_addons::ListAddonsOutput::builder()
                .set_addons(Some(names.clone()))
                .build()
        }),
        mock!(aws_sdk_eks::Client::describe_addon).then_compute_output(move |req| {
            aws_sdk_eks::operation::describe_addon::DescribeAddonOutput::builder()
                .set_addon(
                    addons
                        .iter()
                        .find(|a| a.addon_name() == req.addon_name())
                        .cloned(),
                )
                .build()
        }),
    ]
}

fn addon(name: &str, status: AddonStatus, issues: Vec<AddonIssue>) -> Addon {
    Addon::builder()
        .addon_name(name)
        .addon_version("v1.19.0-eksbuild.1")
        .status(status)
        .health(AddonHealth::builder().set_issues(Some(issues)).build())
        .build()
}

/// Runs `status` with only the RDS and EKS rows, on clients that answer from `rds` and `eks`.
async fn rows(rds: &[Rule], eks: &[Rule]) -> (Check, Check) {
    let no_retries = aws_smithy_types::retry::RetryConfig::disabled();
    let cloudwatch_empty = mock!(aws_sdk_cloudwatch::Client::get_metric_statistics).then_output(
        || {
            aws_sdk_cloudwatch::operation::get_metric_statistics::GetMetricStatisticsOutput::builder()
                .build()
        },
    );
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    let rds_refs: Vec<&Rule> = rds.iter().collect();
    let eks_refs: Vec<&Rule> = eks.iter().collect();
    let cloud = CloudClients {
        bus: latamctl::aws::AwsClients::from_sdk(sdk),
        cloudwatch: mock_client!(
            aws_sdk_cloudwatch,
            RuleMode::MatchAny,
            [&cloudwatch_empty],
            |c| c.retry_config(no_retries.clone())
        ),
        rds: mock_client!(aws_sdk_rds, RuleMode::MatchAny, &rds_refs, |c| c
            .retry_config(no_retries.clone())),
        eks: mock_client!(aws_sdk_eks, RuleMode::MatchAny, &eks_refs, |c| c
            .retry_config(no_retries.clone())),
    };
    let mut config = Config::default();
    config.aws.rds_instance_id = Some("latam-prod-db".into());
    config.aws.eks_cluster = Some("latam-prod".into());
    let targets = Targets {
        api: None,
        api_token: None,
        api_window: Duration::ZERO,
        sns_topic: false,
        cloud: Some(cloud),
        queue: Ok(None),
        store: Ok(None),
        kube: None,
        kube_server: None,
    };
    let report = run(&config, &targets).await;
    let find = |name: &str| {
        report
            .checks
            .iter()
            .find(|c| c.component == name)
            .unwrap_or_else(|| panic!("no {name} row: {report:?}"))
            .clone()
    };
    (find("rds"), find("eks"))
}

#[tokio::test]
async fn healthy_rds_and_eks_with_nothing_pending_are_ok() {
    let rds = rds_rules(vec![]);
    let eks = eks_rules(vec![
        addon("vpc-cni", AddonStatus::Active, vec![]),
        addon("coredns", AddonStatus::Active, vec![]),
    ]);
    let (rds_row, eks_row) = rows(&rds, &eks).await;
    assert_eq!(rds_row.state, State::Ok, "{rds_row:?}");
    assert_eq!(rds_row.figures["maintenance"], "none");
    assert_eq!(eks_row.state, State::Ok, "{eks_row:?}");
    assert_eq!(eks_row.figures["addons"], "2");
    assert_eq!(
        eks_row.figures["addon coredns"],
        "ACTIVE v1.19.0-eksbuild.1"
    );
}

#[tokio::test]
async fn maintenance_due_soon_warns_with_the_command_and_later_maintenance_is_only_shown() {
    let soon = PendingMaintenanceAction::builder()
        .action("system-update")
        .description("New Operating System update is available")
        .forced_apply_date(days_from_now(3))
        .build();
    let later = PendingMaintenanceAction::builder()
        .action("db-upgrade")
        .auto_applied_after_date(days_from_now(60))
        .build();

    let rds = rds_rules(vec![later.clone()]);
    let eks = eks_rules(vec![]);
    let (row, _) = rows(&rds, &eks).await;
    assert_eq!(row.state, State::Ok, "{row:?}");
    assert!(
        row.figures["maintenance"].starts_with("db-upgrade (due 20"),
        "{row:?}"
    );

    let rds = rds_rules(vec![later, soon]);
    let (row, _) = rows(&rds, &eks).await;
    assert_eq!(row.state, State::Warn, "{row:?}");
    assert!(
        row.figures["maintenance"].contains("system-update (due 20"),
        "{row:?}"
    );
    for words in [
        "RDS maintenance system-update (New Operating System update is available) is due",
        &format!("--resource-identifier {ARN} --apply-action system-update"),
    ] {
        assert!(row.hint.contains(words), "{words}: {row:?}");
    }
    assert!(!row.hint.contains("db-upgrade"), "{row:?}");
}

#[tokio::test]
async fn a_degraded_addon_fails_the_eks_row_and_names_its_issue() {
    let rds = rds_rules(vec![]);
    let eks = eks_rules(vec![
        addon("vpc-cni", AddonStatus::Active, vec![]),
        addon(
            "coredns",
            AddonStatus::Degraded,
            vec![
                AddonIssue::builder()
                    .code(AddonIssueCode::InsufficientNumberOfReplicas)
                    .message("The add-on is unhealthy because it doesn't have the desired number of replicas.")
                    .build(),
            ],
        ),
        addon("kube-proxy", AddonStatus::Updating, vec![]),
    ]);
    let (_, row) = rows(&rds, &eks).await;
    assert_eq!(row.state, State::Fail, "{row:?}");
    assert_eq!(row.figures["addon coredns"], "DEGRADED v1.19.0-eksbuild.1");
    for words in [
        "add-on coredns is DEGRADED: `aws eks describe-addon --cluster-name latam-prod --addon-name coredns`",
        "add-on coredns health: InsufficientNumberOfReplicas: The add-on is unhealthy",
        "add-on kube-proxy is UPDATING",
    ] {
        assert!(row.hint.contains(words), "{words}: {row:?}");
    }
    assert!(!row.hint.contains("vpc-cni"), "{row:?}");
}

#[tokio::test]
async fn a_refused_read_warns_and_names_the_permission() {
    let mut rds = rds_rules(vec![]);
    rds[1] = mock!(aws_sdk_rds::Client::describe_pending_maintenance_actions).then_http_response(
        || {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(403).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized to perform: rds:DescribePendingMaintenanceActions</Message></Error></ErrorResponse>",
                ),
            )
        },
    );
    let eks = eks_rules(vec![]);
    let (row, _) = rows(&rds, &eks).await;
    assert_eq!(row.state, State::Warn, "{row:?}");
    assert!(
        row.hint
            .contains("cannot read the pending maintenance: AWS unavailable: rds:DescribePendingMaintenanceActions"),
        "{row:?}"
    );
    assert!(row.hint.contains("AccessDenied"), "{row:?}");
}
