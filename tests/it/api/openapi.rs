//! `/openapi.json` and the router are one contract; the document states the handlers' rules.

use super::*;

/// The document and the router are one contract: every route the router serves is in
/// `/openapi.json` with its method, and nothing else is; each documented operation reaches
/// its handler (not the router's 404/405 fallback).
#[tokio::test]
async fn openapi_documents_exactly_the_routes_the_router_serves() {
    use latamctl::api::ROUTES;
    for token in [None, Some("t0ken")] {
        let h = harness(token).await;
        let (status, doc, headers) = send(&h.router, get("/openapi.json")).await;
        assert_eq!(status, 200);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |method| (method.to_uppercase(), path.clone()))
            })
            .collect();
        documented.sort();
        let mut served: Vec<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_owned(), r.path.to_owned()))
            .collect();
        served.sort();
        assert_eq!(documented, served, "/openapi.json and api::ROUTES differ");

        for route in ROUTES {
            let path = route
                .path
                .replace("{transaction_id}", "01930000-0000-7000-8000-000000000000");
            let req = Request::builder()
                .method(route.method)
                .uri(&path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let (status, body, _) = send(&h.router, req).await;
            let fallback =
                status == 405 || body["message"] == "no such route; see GET /openapi.json";
            assert!(
                !fallback,
                "{} {} is documented but not routed: {status} {body}",
                route.method, route.path
            );
            let documented = &doc["paths"][route.path][route.method.to_lowercase()]["responses"];
            assert!(
                documented[status.as_str()].is_object(),
                "{} {} answered {status}, which the document does not list: {body}",
                route.method,
                route.path
            );
        }

        // The bearer scheme is named exactly when a token is configured.
        let post = &doc["paths"]["/ingresar-datos"]["post"];
        if token.is_some() {
            assert_eq!(post["security"], json!([{"bearer": []}]));
            assert!(post["responses"]["401"].is_object());
            assert_eq!(
                doc["components"]["securitySchemes"]["bearer"]["scheme"],
                "bearer"
            );
        } else {
            assert!(post.get("security").is_none(), "{post}");
            assert!(post["responses"].get("401").is_none());
            assert!(doc["components"].get("securitySchemes").is_none());
        }
        assert!(doc["paths"]["/healthz"]["get"].get("security").is_none());
    }
}

/// Every rule the handlers enforce that a schema can express is in the document, from the
/// same constants: a client generated from it sends nothing the server refuses.
#[tokio::test]
async fn openapi_states_the_rules_the_handlers_enforce() {
    let h = harness(None).await;
    let (_, doc, _) = send(&h.router, get("/openapi.json")).await;
    let request = &doc["components"]["schemas"]["IngestRequest"]["properties"];
    assert_eq!(request["message"]["minLength"], 1);
    assert_eq!(
        request["message"]["maxLength"],
        latamctl::bus::MAX_MESSAGE_BYTES
    );
    assert_eq!(
        request["attributes"]["maxProperties"],
        latamctl::bus::MAX_CLIENT_ATTRIBUTES
    );
    assert_eq!(request["attributes"]["propertyNames"]["maxLength"], 256);
    // This instance's topic: its name or its configured ARN, nothing else.
    assert_eq!(
        request["topic_arn"]["pattern"],
        "^(data-ingestion-topic|arn:aws:sns:us-east-1:123456789012:data-ingestion-topic)$"
    );
    let id = &doc["paths"]["/data/{transaction_id}"]["get"]["parameters"][0]["schema"];
    assert_eq!(id["format"], "uuid");
    let key = &doc["paths"]["/ingresar-datos"]["post"]["parameters"][0];
    assert_eq!(key["name"], "Idempotency-Key");
    assert_eq!(key["schema"]["maxLength"], 255);
    for status in [
        "200", "400", "403", "409", "413", "415", "422", "429", "503",
    ] {
        let response = &doc["paths"]["/ingresar-datos"]["post"]["responses"][status];
        assert!(response.is_object(), "POST does not document {status}");
        if status != "200" {
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{status}"
            );
        }
    }

    // The forms the document excludes are refused: a UUID other than the hyphenated one,
    // a topic with surrounding whitespace.
    let (status, body, _) = send(&h.router, get("/data/0193000000007000800000000000000")).await;
    assert_eq!(status, 400, "{body}");
    let (status, body, _) = send(&h.router, get("/data/01930000000070008000000000000000")).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_transaction_id"))
    );
    let (status, body, _) = send(
        &h.router,
        post_json(json!({"topic_arn": " data-ingestion-topic", "message": "m"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}
