//! The one HTTP client of this project's own API: `publish` (POST and the verifying GETs)
//! and `status` (`/readyz`, `/metrics`) speak to a pipeline through it, so the token, the
//! routes and the error labels are the same everywhere. (`slo` scrapes any Prometheus
//! text endpoint, a system's `/metrics` among them, with its own scraper: `/metrics` is a
//! probe route, never authenticated.)

use std::collections::BTreeMap;
use std::time::Duration;

use uuid::Uuid;

use crate::record::StoredRecord;

/// A pipeline's API: its base URL (`http://host:port`, no trailing slash) and bearer token.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    /// `POST /ingresar-datos`, parsed once: `publish` sends it at thousands a second, and
    /// parsing the URL (IDNA included) on each was a few % of the load generator's CPU.
    /// `None` when `base` does not parse: each request then reports it, as before.
    ingest: Option<reqwest::Url>,
    token: Option<String>,
}

/// The body of `POST /ingresar-datos`, serialized from borrows (no copy of the message).
#[derive(serde::Serialize)]
struct PublishRequest<'a> {
    topic_arn: Option<&'a str>,
    message: &'a str,
    attributes: &'a BTreeMap<String, String>,
}

/// Why a request got no usable answer, as `publish` counts errors: `timeout`, `connect`,
/// `transport`, `bad_response`, or the HTTP status with the API's `error` code
/// (`503 queue_unavailable`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RequestError(pub String);

impl RequestError {
    fn of(e: &reqwest::Error) -> Self {
        RequestError(
            if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "transport"
            }
            .to_owned(),
        )
    }
}

impl ApiClient {
    /// A client with `timeout` per request and up to `idle` kept-alive connections.
    pub fn new(
        base: &str,
        token: Option<String>,
        timeout: Duration,
        idle: usize,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(idle.max(1))
            .build()?;
        let base = base.trim_end_matches('/').to_owned();
        let ingest = reqwest::Url::parse(&format!("{base}{}", super::INGEST)).ok();
        Ok(Self {
            http,
            base,
            ingest,
            token,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.authorized(self.http.request(method, format!("{}{path}", self.base)))
    }

    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// `POST /ingresar-datos`: the transaction id the API acknowledged.
    pub async fn publish(
        &self,
        topic_arn: Option<&str>,
        message: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<Uuid, RequestError> {
        let req = match &self.ingest {
            Some(url) => self.authorized(self.http.post(url.clone())),
            None => self.request(reqwest::Method::POST, super::INGEST),
        };
        let resp = req
            .json(&PublishRequest {
                topic_arn,
                message,
                attributes,
            })
            .send()
            .await
            .map_err(|e| RequestError::of(&e))?;
        let status = resp.status();
        if !status.is_success() {
            let code = resp
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_default();
            return Err(RequestError(
                format!("{} {code}", status.as_u16()).trim().to_owned(),
            ));
        }
        let accepted: super::Accepted = resp
            .json()
            .await
            .map_err(|_| RequestError("bad_response".into()))?;
        Ok(accepted.transaction_id)
    }

    /// `GET /data/{id}`: the stored record, `None` while it is not stored (404).
    pub async fn record(&self, id: Uuid) -> Result<Option<StoredRecord>, RequestError> {
        let resp = self
            .request(
                reqwest::Method::GET,
                &super::RECORD.replace("{transaction_id}", &id.to_string()),
            )
            .send()
            .await
            .map_err(|e| RequestError::of(&e))?;
        match resp.status().as_u16() {
            200 => resp
                .json()
                .await
                .map(Some)
                .map_err(|_| RequestError("bad_response".into())),
            404 => Ok(None),
            status => Err(RequestError(status.to_string())),
        }
    }

    /// `GET /readyz`: its status code and body (the checks).
    pub async fn readyz(&self) -> Result<(u16, serde_json::Value), reqwest::Error> {
        let resp = self
            .request(reqwest::Method::GET, super::READYZ)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or_default()))
    }

    /// `GET /metrics`: the Prometheus text.
    pub async fn metrics(&self) -> Result<String, reqwest::Error> {
        self.request(reqwest::Method::GET, super::METRICS)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await
    }
}
