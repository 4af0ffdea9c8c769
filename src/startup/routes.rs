//! Every route of the API, listed once.

use crate::api::{self, middleware};
use crate::settings::Service;
use actix_web::web;

/// The routes of the services this instance runs, and the ones every instance serves.
pub fn configure(cfg: &mut web::ServiceConfig, services: &[Service]) {
    common(cfg);
    // Before the gateway's `/v1` scope, which would otherwise take every `/v1/...` path.
    if services.contains(&Service::Inventory) {
        inventory(cfg);
    }
    if services.contains(&Service::Orders) {
        orders(cfg);
    }
    if services.contains(&Service::Finance) {
        finance(cfg);
    }
    if services.contains(&Service::Gateway) {
        gateway(cfg);
    }
}

fn finance(cfg: &mut web::ServiceConfig) {
    use api::{invoices, ledger, payments, rates, reports};
    let resource =
        |path: &str| web::resource(path).default_service(web::to(middleware::method_not_allowed));
    cfg.service(resource("/v1/ledger/accounts").route(web::get().to(ledger::list_accounts)))
        .service(
            resource("/v1/ledger/accounts/{id}")
                .route(web::put().to(ledger::put_account))
                .route(web::get().to(ledger::get_account)),
        )
        .service(
            resource("/v1/ledger/transfers")
                .route(web::post().to(ledger::post_transfer))
                .route(web::get().to(ledger::list_transfers)),
        )
        .service(resource("/v1/ledger/transfer-batches").route(web::post().to(ledger::post_batch)))
        .service(resource("/v1/ledger/transfers/{id}").route(web::get().to(ledger::get_transfer)))
        .service(resource("/v1/ledger/trial-balance").route(web::get().to(ledger::trial_balance)))
        .service(resource("/v1/payment-accounts").route(web::get().to(payments::list_accounts)))
        .service(
            resource("/v1/payment-accounts/{provider}/{name}")
                .route(web::put().to(payments::put_account)),
        )
        .service(
            resource("/v1/payment-webhooks/{provider}/{id}")
                .route(web::post().to(payments::webhook)),
        )
        .service(resource("/v1/payments").route(web::get().to(payments::list)))
        .service(
            resource("/v1/payments/{provider}/{event_id}/match")
                .route(web::post().to(payments::match_payment)),
        )
        .service(resource("/v1/ledger/reports/summary").route(web::get().to(reports::summary)))
        .service(
            resource("/v1/ledger/settings")
                .route(web::get().to(reports::get_settings))
                .route(web::put().to(reports::put_settings)),
        )
        .service(
            resource("/v1/ledger/accounts/{id}/statement").route(web::get().to(reports::statement)),
        )
        .service(resource("/v1/carrier-invoices").route(web::post().to(invoices::import)))
        .service(resource("/v1/carrier-invoices/{id}").route(web::get().to(invoices::get)))
        .service(
            resource("/v1/carrier-invoices/{id}/lines/{line}/{action}")
                .route(web::post().to(invoices::settle)),
        )
        .service(resource("/v1/ledger/conversions").route(web::post().to(rates::post_conversion)))
        .service(
            resource("/v1/ledger/conversions/{id}").route(web::get().to(rates::get_conversion)),
        )
        .service(resource("/v1/fx-rates").route(web::get().to(rates::list)))
        .service(resource("/v1/fx-rates/imports").route(web::post().to(rates::import)))
        .service(resource("/v1/fx-rates/convert").route(web::get().to(rates::convert)))
        .service(resource("/v1/fx-rates/{base}/{quote}").route(web::put().to(rates::put)));
}

/// Health, metrics, the contract and its docs page, and keys.
fn common(cfg: &mut web::ServiceConfig) {
    cfg.route("/livez", web::get().to(api::health::livez))
        .route("/readyz", web::get().to(api::health::readyz))
        .route("/openapi.json", web::get().to(api::openapi::document))
        .route("/metrics", web::get().to(api::health::metrics))
        .route("/docs", web::get().to(api::docs::page))
        .route("/docs/docs.js", web::get().to(api::docs::script))
        .service(
            web::resource("/v1/keys")
                .route(web::post().to(api::keys::create))
                .route(web::get().to(api::keys::list))
                .default_service(web::to(middleware::method_not_allowed)),
        )
        .service(
            web::resource("/v1/keys/{id}/rotate")
                .route(web::post().to(api::keys::rotate))
                .default_service(web::to(middleware::method_not_allowed)),
        )
        .service(
            web::resource("/v1/keys/{id}/revoke")
                .route(web::post().to(api::keys::revoke))
                .default_service(web::to(middleware::method_not_allowed)),
        );
}

fn inventory(cfg: &mut web::ServiceConfig) {
    use api::inventory as inv;
    use api::inventory_allocations as alloc;
    let resource =
        |path: &str| web::resource(path).default_service(web::to(middleware::method_not_allowed));
    cfg.service(
        resource("/v1/inventory/skus/{sku}")
            .route(web::put().to(inv::put_sku))
            .route(web::get().to(inv::get_sku)),
    )
    .service(resource("/v1/inventory/warehouses").route(web::get().to(inv::list_warehouses)))
    .service(resource("/v1/inventory/warehouses/{code}").route(web::put().to(inv::put_warehouse)))
    .service(resource("/v1/inventory/channels").route(web::get().to(inv::list_channels)))
    .service(resource("/v1/inventory/channels/{channel}").route(web::put().to(inv::put_channel)))
    .service(
        resource("/v1/inventory/sku-mappings/{channel}/{identifier}")
            .route(web::put().to(inv::put_mapping))
            .route(web::get().to(inv::get_mapping)),
    )
    .service(
        resource("/v1/inventory/movements")
            .route(web::post().to(inv::record_movement))
            .route(web::get().to(inv::list_movements)),
    )
    .service(
        resource("/v1/inventory/stock/{sku}/{warehouse}")
            .route(web::put().to(inv::put_safety_stock)),
    )
    .service(resource("/v1/inventory/allocations").route(web::post().to(alloc::create)))
    .service(resource("/v1/inventory/allocations/{id}").route(web::get().to(alloc::get)))
    .service(resource("/v1/inventory/allocations/{id}/commit").route(web::post().to(alloc::commit)))
    .service(
        resource("/v1/inventory/allocations/{id}/release").route(web::post().to(alloc::release)),
    );
}

fn orders(cfg: &mut web::ServiceConfig) {
    use api::orders;
    let resource =
        |path: &str| web::resource(path).default_service(web::to(middleware::method_not_allowed));
    cfg.service(
        resource("/v1/orders")
            .route(web::post().to(orders::ingest))
            .route(web::get().to(orders::list)),
    )
    .service(resource("/v1/orders-at-risk").route(web::get().to(orders::at_risk)))
    .service(resource("/v1/pick-lists").route(web::post().to(orders::pick_list)))
    .service(
        resource("/v1/order-settings")
            .route(web::get().to(orders::get_settings))
            .route(web::put().to(orders::put_settings)),
    )
    .service(resource("/v1/orders/{id}").route(web::get().to(orders::get)))
    .service(resource("/v1/orders/{id}/actions").route(web::post().to(orders::act)))
    .service(resource("/v1/orders/{id}/labels").route(web::get().to(orders::labels)))
    .service(resource("/v1/order-shops").route(web::get().to(api::order_shops::list)))
    .service(
        resource("/v1/order-shops/{channel}/{shop}").route(web::put().to(api::order_shops::put)),
    )
    .service(
        resource("/v1/order-shops/{channel}/{shop}/pull")
            .route(web::post().to(api::order_shops::pull)),
    )
    .service(
        resource("/v1/channel-webhooks/{channel}/{id}")
            .route(web::post().to(api::order_shops::webhook)),
    );
}

/// Waybills, labels, tracking, callbacks, webhooks, the label station.
fn gateway(cfg: &mut web::ServiceConfig) {
    cfg.route("/station", web::get().to(api::station::page))
        .route("/station/station.js", web::get().to(api::station::script))
        .service(
            web::scope("/v1")
                .service(
                    web::resource("/waybills")
                        .route(web::post().to(api::waybills::create))
                        .route(web::get().to(api::waybills::by_reference))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/waybills/{number}")
                        .route(web::get().to(api::waybills::get))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/waybills/{number}/label")
                        .route(web::get().to(api::waybills::label))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/labels/batch")
                        .route(web::post().to(api::labels::batch))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/waybills/{number}/last-mile")
                        .route(web::get().to(api::tracking::last_mile))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/tracking/query")
                        .route(web::post().to(api::tracking::query))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/tracking/{number}")
                        .route(web::get().to(api::tracking::get))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/callbacks/{carrier}")
                        .route(web::post().to(api::tracking::callback))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/webhook-endpoints")
                        .route(web::post().to(api::webhooks::create))
                        .route(web::get().to(api::webhooks::list))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/webhook-endpoints/{id}")
                        .route(web::delete().to(api::webhooks::delete))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/webhook-endpoints/{id}/replay")
                        .route(web::post().to(api::webhooks::replay_dead))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/webhook-deliveries")
                        .route(web::get().to(api::webhooks::deliveries))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/webhook-deliveries/{id}")
                        .route(web::get().to(api::webhooks::delivery))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/webhook-deliveries/{id}/replay")
                        .route(web::post().to(api::webhooks::replay))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/unknown-attempts")
                        .route(web::get().to(api::unresolved::list))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/unknown-attempts/{reference}/resolve")
                        .route(web::post().to(api::unresolved::resolve))
                        .default_service(web::to(middleware::method_not_allowed)),
                )
                .service(
                    web::resource("/waybills/{number}/cancel")
                        .route(web::post().to(api::waybills::cancel))
                        .default_service(web::to(middleware::method_not_allowed)),
                ),
        );
}
