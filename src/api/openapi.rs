//! The OpenAPI 3 document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "latamctl ingestion API",
        description = "POST messages to a topic; GET them back by transaction id once stored. \
                       `POST /ingresar-datos/` (trailing slash) is accepted too.",
    ),
    paths(
        super::ingest::post_message,
        super::ingest::get_record,
        super::healthz,
        super::readyz,
        super::metrics_text,
    ),
    components(schemas(
        super::IngestRequest,
        super::Accepted,
        super::ErrorBody,
        super::Health,
        crate::store::StoredRecord,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "ingest", description = "Publish and read messages."),
        (name = "health", description = "Probes and metrics."),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document of this API.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
