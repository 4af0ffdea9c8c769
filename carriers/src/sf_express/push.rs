//! SF's route push (`RoutePushService`): SF posts each new route as
//! `<Request service="RoutePushService"><Body><WaybillRoute id=… mailno=… acceptTime=…
//! acceptAddress=… remark=… opCode=…/></Body></Request>` (form field `content`, signed with the
//! same `verifyCode` as requests) and expects `<Head>OK</Head>` back.

use super::responses::route_event;
use crate::push::{PushAnswer, PushDelivery, PushError, PushReceiver, PushRequest, Refusal};
use crate::{CarrierError, CarrierId, TrackingEvent};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub struct SfPush;

impl PushReceiver for SfPush {
    fn carrier(&self) -> CarrierId {
        CarrierId::SfExpress
    }

    fn read(
        &self,
        req: &PushRequest<'_>,
        checkword: &SecretString,
    ) -> Result<Vec<PushDelivery>, PushError> {
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(req.body)
            .map_err(|e| PushError::Invalid(format!("form body: {e}")))?;
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let content = field("content")
            .or_else(|| field("xml"))
            .ok_or_else(|| PushError::Invalid("form field `content` is missing".into()))?;
        let verify = field("verifyCode")
            .ok_or_else(|| PushError::Unauthorized("form field `verifyCode` is missing".into()))?;
        let expected = super::verify_code(content, checkword.expose_secret());
        if !crate::signing::constant_time_eq(expected.as_bytes(), verify.trim().as_bytes()) {
            return Err(PushError::Unauthorized("verifyCode does not match".into()));
        }
        let routes = parse_route_push(content).map_err(|e| PushError::Invalid(e.to_string()))?;
        Ok(routes
            .into_iter()
            .map(|r| PushDelivery {
                id: r.id,
                number: r.mailno,
                update: vec![r.event].into(),
            })
            .collect())
    }

    /// SF expects its XML envelope back, with its own error codes.
    fn answer(&self, outcome: Result<(), (Refusal, &str)>) -> Option<PushAnswer> {
        let body = match outcome {
            Ok(()) => ok_answer(),
            Err((refusal, message)) => {
                let code = match refusal {
                    Refusal::Unauthorized => "4002",
                    Refusal::Replayed => "4003",
                    Refusal::Invalid => "4004",
                    Refusal::Other => "4001",
                };
                err_answer(code, message)
            }
        };
        Some(PushAnswer {
            content_type: "application/xml; charset=utf-8",
            body,
        })
    }
}

/// One pushed route: SF's route id (unique per route), the waybill and the event.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutePush {
    pub id: String,
    pub mailno: String,
    pub event: TrackingEvent,
}

#[derive(Deserialize)]
struct RoutePushRequest {
    #[serde(rename = "@service")]
    service: Option<String>,
    #[serde(rename = "Body")]
    body: PushBody,
}

#[derive(Deserialize)]
struct PushBody {
    #[serde(rename = "WaybillRoute", default)]
    routes: Vec<WaybillRoute>,
}

#[derive(Deserialize)]
struct WaybillRoute {
    #[serde(rename = "@id")]
    id: String,
    #[serde(rename = "@mailno")]
    mailno: String,
    #[serde(rename = "@acceptTime")]
    accept_time: String,
    #[serde(rename = "@acceptAddress")]
    accept_address: Option<String>,
    #[serde(rename = "@remark")]
    remark: Option<String>,
    #[serde(rename = "@opCode")]
    op_code: Option<String>,
}

fn bad(msg: impl std::fmt::Display) -> CarrierError {
    CarrierError::BadResponse(format!("sf_express push: {msg}"))
}

pub fn parse_route_push(xml: &str) -> Result<Vec<RoutePush>, CarrierError> {
    let request: RoutePushRequest =
        quick_xml::de::from_str(xml).map_err(|e| bad(format!("unreadable XML: {e}")))?;
    if let Some(service) = request.service.as_deref()
        && service != "RoutePushService"
    {
        return Err(bad(format!("unexpected service {service}")));
    }
    if request.body.routes.is_empty() {
        return Err(bad("no WaybillRoute"));
    }
    request
        .body
        .routes
        .into_iter()
        .map(|r| {
            Ok(RoutePush {
                event: route_event(&r.accept_time, r.accept_address, r.op_code, r.remark)
                    .map_err(bad)?,
                id: r.id,
                mailno: r.mailno,
            })
        })
        .collect()
}

/// The acknowledgement SF expects.
pub fn ok_answer() -> String {
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response service=\"RoutePushService\"><Head>OK</Head></Response>".into()
}

/// A refusal in SF's envelope (`4001` system error, `4002` bad signature...).
pub fn err_answer(code: &str, message: &str) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response service=\"RoutePushService\"><Head>ERR</Head><ERROR code=\"{}\">{}</ERROR></Response>",
        escape(code),
        escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_pushes_are_read_in_china_time() {
        let xml = r#"<Request service="RoutePushService" lang="zh-CN"><Body>
            <WaybillRoute id="10001" mailno="444003077898" orderid="TE2014" acceptTime="2014-06-27 17:29:37" acceptAddress="深圳" remark="已收件" opCode="50"/>
            <WaybillRoute id='10002' mailno='444003077898' acceptTime='2014-06-28 09:00:00' acceptAddress='深圳' remark='已签收' opCode='80'/>
            </Body></Request>"#;
        let routes = parse_route_push(xml).unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].id, "10001");
        assert_eq!(routes[0].mailno, "444003077898");
        assert_eq!(
            routes[0].event.occurred_at.to_rfc3339(),
            "2014-06-27T17:29:37+08:00"
        );
        assert_eq!(routes[0].event.status, crate::TrackingStatus::PickedUp);
        assert_eq!(routes[1].event.status, crate::TrackingStatus::Delivered);
        assert!(parse_route_push("<Request><Body></Body></Request>").is_err());
        assert!(
            parse_route_push("<Request service='RoutePushService'><Body><WaybillRoute").is_err()
        );
        assert!(err_answer("4002", "bad <sig>").contains("bad &lt;sig&gt;"));
    }
}
