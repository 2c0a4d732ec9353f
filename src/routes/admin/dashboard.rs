//! (to be built: the dashboard). A placeholder home so sign-in has somewhere to land.
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};

use crate::routes::admin::page;
use crate::staff::session::CurrentStaff;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(home);
}

#[get("/admin")]
async fn home(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff) -> HttpResponse {
    page(&state, &req, Some(&staff.0), StatusCode::OK, "admin/dashboard.html", tera::Context::new())
}
