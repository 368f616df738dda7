//! Between the signer's view of a request ([`HttpRequest`]) and the
//! meter's ([`Request`]): the attacks sign, then tamper with what is sent.

use crate::proto::httpsig::HttpRequest;

use super::super::meter::Request;

/// The meter request carrying `request`'s method, URI, fields and body.
pub fn to_meter(request: &HttpRequest) -> Request {
    let mut out = Request::new(&request.method, &request.target_uri);
    for (name, value) in request.fields.iter() {
        out = out.header(name, String::from_utf8_lossy(value).into_owned());
    }
    out.body = request.body.clone();
    out
}

/// The signer's view of a meter request.
pub fn to_signable(request: &Request) -> HttpRequest {
    let mut out = HttpRequest::new(request.method.clone(), request.url.clone());
    for (name, value) in &request.headers {
        out.fields.append(name.clone(), value.as_bytes().to_vec());
    }
    out.body = request.body.clone();
    out
}

/// `request` without the header fields named `names` (any case).
pub fn without(mut request: Request, names: &[&str]) -> Request {
    request
        .headers
        .retain(|(n, _)| !names.iter().any(|name| n.eq_ignore_ascii_case(name)));
    request
}

/// `request` with header `name` set to `value` (replacing any).
pub fn with_header(request: Request, name: &str, value: &str) -> Request {
    without(request, &[name]).header(name, value)
}
