//! The fake API server: the REST paths kube-rs asks for, answered from a `Cluster`.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::*;

fn not_found_page() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

fn matches_selector(o: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    selector.split(',').all(|pair| {
        let (k, v) = pair.split_once('=').expect("equality selectors only");
        o["metadata"]["labels"][k] == v
    })
}

/// GET on the REST paths kube-rs asks for: one object, or a list with `labelSelector`.
async fn serve_path(
    State(cluster): State<Cluster>,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let path = uri.path();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group_version, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("v1".to_owned(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return not_found_page(),
    };
    let (namespace, plural, name) = match rest {
        ["namespaces", ns, plural] => (*ns, *plural, None),
        ["namespaces", ns, plural, name] => (*ns, *plural, Some(*name)),
        _ => return not_found_page(),
    };
    let builtin =
        ["v1", "apps/v1", "autoscaling/v2", "policy/v1"].contains(&group_version.as_str());
    if !builtin
        && !cluster
            .crds
            .lock()
            .unwrap()
            .contains(&format!("{group_version}/{plural}"))
    {
        return not_found_page();
    }
    let objects = cluster.objects.lock().unwrap().clone();
    let of_type = objects.into_iter().filter(|o| {
        let (gv, p) = resource_of(o);
        gv == group_version && p == plural && o["metadata"]["namespace"] == namespace
    });
    match name {
        Some(name) => match of_type.into_iter().find(|o| o["metadata"]["name"] == name) {
            Some(o) => axum::Json(o).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                axum::Json(json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("{plural} \"{name}\" not found"), "reason": "NotFound", "code": 404,
                })),
            )
                .into_response(),
        },
        None => {
            let items: Vec<Value> = of_type
                .filter(|o| matches_selector(o, query.get("labelSelector")))
                .collect();
            axum::Json(json!({
                "apiVersion": group_version, "kind": "List",
                "metadata": {"resourceVersion": "1"}, "items": items,
            }))
            .into_response()
        }
    }
}

/// Starts the fake API server on a free port; returns the kubeconfig that points at it.
pub(super) fn start(cluster: Cluster, dir: &Path) -> PathBuf {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().fallback(serve_path).with_state(cluster);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {NAMESPACE}\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: fake\n"
        ),
    )
    .unwrap();
    kubeconfig
}
