//! The RFC 9635 examples as tests: every grant request example of §2 (and
//! the request bodies of §5.3, §7.3.1, §9.1 and Appendix B) parses, every
//! grant response example of §3, §5 and §6 deserializes and serializes back
//! to the same JSON.
//!
//! The JSON is copied from the draft-ietf-gnap-core-protocol -18 source.
//! Where the draft's text is not valid JSON, the fix is the smallest one and
//! is said beside the example; a fragment (`"access_token": {…}`) is wrapped
//! in the object it belongs to, with `"client": "client-541-ab"` (the §2.3.1
//! example reference) where a request needs a client. Examples that use
//! shapes gnapd does not accept are tested for the refusal instead.

use serde_json::{Value, json};

use super::access::AccessRight;
use super::error::{ErrorCode, GrantError};
use super::interact::{FinishMethod, StartMode};
use super::key::HttpSigProof;
use super::reader::Reason;
use super::request::{AccessTokenRequests, Client, GrantRequest, parse_grant_request};
use super::response::{AccessTokens, GrantResponse, ResponseFlag};
use super::subject::User;

fn request(text: &str) -> GrantRequest {
    match parse_grant_request(text.as_bytes()) {
        Ok(request) => request,
        Err(err) => panic!("refused: {err}\n{text}"),
    }
}

fn request_value(value: Value) -> GrantRequest {
    request(&value.to_string())
}

/// Deserializes a response example and checks it serializes back to the
/// same JSON value.
fn round_trip(text: &str) -> GrantResponse {
    let wire: Value = serde_json::from_str(text).unwrap();
    let response: GrantResponse = serde_json::from_value(wire.clone()).unwrap();
    assert_eq!(serde_json::to_value(&response).unwrap(), wire, "{text}");
    response
}

#[test]
fn section_2_full_request_example() {
    let parsed = request(
        r#"{
    "access_token": {
        "access": [
            {
                "type": "photo-api",
                "actions": [
                    "read",
                    "write",
                    "dolphin"
                ],
                "locations": [
                    "https://server.example.net/",
                    "https://resource.local/other"
                ],
                "datatypes": [
                    "metadata",
                    "images"
                ]
            },
            "dolphin-metadata"
        ]
    },
    "client": {
      "display": {
        "name": "My Client Display Name",
        "uri": "https://example.net/client"
      },
      "key": {
        "proof": "httpsig",
        "jwk": {
          "kty": "RSA",
          "e": "AQAB",
          "kid": "xyz-1",
          "alg": "RS256",
          "n": "kOB5rR4Jv0GMeL...."
        }
      }
    },
    "interact": {
        "start": ["redirect"],
        "finish": {
            "method": "redirect",
            "uri": "https://client.example.net/return/123455",
            "nonce": "LKLTI25DK82FX4T4QFZC"
        }
    },
    "subject": {
        "sub_id_formats": ["iss_sub", "opaque"],
        "assertion_formats": ["id_token"]
    }
}"#,
    );
    let Some(AccessTokenRequests::Single(token)) = &parsed.access_token else {
        panic!("single token expected");
    };
    assert_eq!(
        token.access[1],
        AccessRight::Reference("dolphin-metadata".into())
    );
    let Client::Key(client) = &parsed.client else {
        panic!("client by value expected");
    };
    assert_eq!(
        client.key.proof,
        crate::proto::gnap::Proof::HttpSig(HttpSigProof::Derived)
    );
    assert_eq!(client.key.jwk["kid"], "xyz-1");
    assert_eq!(
        parsed.interact.as_ref().unwrap().start,
        [StartMode::Redirect]
    );
    assert_eq!(
        parsed.subject.as_ref().unwrap().sub_id_formats.as_deref(),
        Some(&["iss_sub".to_owned(), "opaque".to_owned()][..])
    );
}

#[test]
fn section_2_1_1_single_labelled_token_example() {
    let parsed = request_value(json!({
        "access_token": {
            "access": [
                {
                    "type": "photo-api",
                    "actions": ["read", "write", "delete"],
                    "locations": ["https://server.example.net/", "https://resource.local/other"],
                    "datatypes": ["metadata", "images"]
                },
                {
                    "type": "walrus-access",
                    "actions": ["foo", "bar"],
                    "locations": ["https://resource.other/"],
                    "datatypes": ["data", "pictures", "walrus whiskers"]
                }
            ],
            "label": "token1-23"
        },
        "client": "client-541-ab"
    }));
    let Some(AccessTokenRequests::Single(token)) = &parsed.access_token else {
        panic!("single token expected");
    };
    assert_eq!(token.label.as_deref(), Some("token1-23"));
    assert!(!token.wants_bearer());
}

#[test]
fn section_2_1_2_multiple_tokens_example() {
    let parsed = request_value(json!({
        "access_token": [
            {
                "label": "token1",
                "access": [
                    {
                        "type": "photo-api",
                        "actions": ["read", "write", "dolphin"],
                        "locations": ["https://server.example.net/", "https://resource.local/other"],
                        "datatypes": ["metadata", "images"]
                    },
                    "dolphin-metadata"
                ]
            },
            {
                "label": "token2",
                "access": [
                    {
                        "type": "walrus-access",
                        "actions": ["foo", "bar"],
                        "locations": ["https://resource.other/"],
                        "datatypes": ["data", "pictures", "walrus whiskers"]
                    }
                ],
                "flags": [ "bearer" ]
            }
        ],
        "client": "client-541-ab"
    }));
    let Some(AccessTokenRequests::Multiple(tokens)) = &parsed.access_token else {
        panic!("multiple tokens expected");
    };
    assert_eq!(tokens[0].label.as_deref(), Some("token1"));
    assert!(!tokens[0].wants_bearer());
    assert!(tokens[1].wants_bearer());
}

#[test]
fn section_2_2_subject_example() {
    let parsed = request_value(json!({
        "subject": {
          "sub_id_formats": [ "iss_sub", "opaque" ],
          "assertion_formats": [ "id_token", "saml2" ]
        },
        "client": "client-541-ab"
    }));
    assert!(parsed.access_token.is_none());
    assert_eq!(
        parsed.subject.unwrap().assertion_formats.unwrap(),
        ["id_token", "saml2"]
    );
}

#[test]
fn section_2_3_client_by_value_example() {
    let parsed = request_value(json!({
        "access_token": {"access": ["dolphin-metadata"]},
        "client": {
            "key": {
                "proof": "httpsig",
                "jwk": {
                    "kty": "RSA",
                    "e": "AQAB",
                    "kid": "xyz-1",
                    "alg": "RS256",
                    "n": "kOB5rR4Jv0GMeLaY6_It_r3ORwdf8ci_JtffXyaSx8..."
                }
            },
            "class_id": "web-server-1234",
            "display": {
                "name": "My Client Display Name",
                "uri": "https://example.net/client"
            }
        }
    }));
    let Client::Key(client) = parsed.client else {
        panic!("client by value expected");
    };
    assert_eq!(client.class_id.as_deref(), Some("web-server-1234"));
}

#[test]
fn section_2_3_1_client_by_reference_example() {
    let parsed = request_value(json!({
        "access_token": {"access": ["dolphin-metadata"]},
        "client": "client-541-ab"
    }));
    assert_eq!(parsed.client, Client::Instance("client-541-ab".into()));
}

#[test]
fn section_2_3_2_display_example() {
    let parsed = request_value(json!({
        "access_token": {"access": ["dolphin-metadata"]},
        "client": {
            "key": {"proof": "httpsig", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": "x"}},
            "display": {
                "name": "My Client Display Name",
                "uri": "https://example.net/client",
                "logo_uri": "data:image/png;base64,Eeww...="
            }
        }
    }));
    let Client::Key(client) = parsed.client else {
        panic!("client by value expected");
    };
    assert_eq!(
        client.display.unwrap().logo_uri.as_deref(),
        Some("data:image/png;base64,Eeww...=")
    );
}

#[test]
fn section_2_4_user_examples() {
    let parsed = request_value(json!({
        "access_token": {"access": ["dolphin-metadata"]},
        "client": "client-541-ab",
        "user": {
          "sub_ids": [ {
            "format": "opaque",
            "id": "J2G8G8O4AZ"
          } ],
          "assertions": [ {
            "format": "id_token",
            "value": "eyj..."
          } ]
        }
    }));
    let Some(User::Value(user)) = parsed.user else {
        panic!("user by value expected");
    };
    assert_eq!(user.assertions.unwrap()[0].format, "id_token");

    let parsed = request_value(json!({
        "access_token": {"access": ["dolphin-metadata"]},
        "client": "client-541-ab",
        "user": "XUT2MFM1XBIKJKSDU8QM"
    }));
    assert_eq!(
        parsed.user,
        Some(User::Reference("XUT2MFM1XBIKJKSDU8QM".into()))
    );
}

/// §2.5 and its subsections show `interact` fragments. Those of §2.5.2.1,
/// §2.5.2.2 and §2.5.3.1 omit `start`, which §2.5 marks REQUIRED; they
/// illustrate one member only, so `"start": []` is added to them.
#[test]
fn section_2_5_interact_examples() {
    let finish_redirect = json!({
        "method": "redirect",
        "uri": "https://client.example.net/return/123455",
        "nonce": "LKLTI25DK82FX4T4QFZC"
    });
    let finish_push = json!({
        "method": "push",
        "uri": "https://client.example.net/return/123455",
        "nonce": "LKLTI25DK82FX4T4QFZC"
    });
    let fragments = [
        json!({"start": ["redirect"], "finish": finish_redirect}),
        json!({"start": ["redirect", "user_code"]}),
        json!({"start": [], "finish": finish_push}),
        json!({"start": ["redirect"]}),
        json!({"start": ["app"]}),
        json!({"start": ["user_code"]}),
        json!({"start": ["user_code_uri"]}),
        json!({"start": [], "finish": finish_redirect}),
        json!({"start": [], "finish": finish_push}),
        json!({"start": [], "hints": {"ui_locales": ["en-US", "fr-CA"]}}),
    ];
    for interact in fragments {
        let parsed = request_value(json!({
            "access_token": {"access": ["dolphin-metadata"]},
            "client": "client-541-ab",
            "interact": interact.clone()
        }));
        let parsed = parsed.interact.unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), interact);
    }
}

#[test]
fn section_5_3_initial_requests_with_references() {
    for access in [json!(["read", "write"]), json!(["read"])] {
        let parsed = request_value(json!({
            "access_token": {"access": access},
            "interact": {
                "start": ["redirect"],
                "finish": {
                    "method": "redirect",
                    "uri": "https://client.example.net/return/123455",
                    "nonce": "LKLTI25DK82FX4T4QFZC"
                }
            },
            "client": "987YHGRT56789IOLK"
        }));
        assert_eq!(parsed.client, Client::Instance("987YHGRT56789IOLK".into()));
    }
}

/// §7.3.1's signed request body. The draft's text lacks the comma between
/// `key` and `display` and has one after `display`; both are fixed.
#[test]
fn section_7_3_1_signed_request_body() {
    let parsed = request(
        r#"{
    "access_token": {
        "access": [
            "dolphin-metadata"
        ]
    },
    "interact": {
        "start": ["redirect"],
        "finish": {
            "method": "redirect",
            "uri": "https://client.foo/callback",
            "nonce": "VJLO6A4CAYLBXHTR0KRO"
        }
    },
    "client": {
      "key": {
        "proof": "httpsig",
        "jwk": {
            "kid": "gnap-rsa",
            "kty": "RSA",
            "e": "AQAB",
            "alg": "PS512",
            "n": "hYOJ-XOKISdMMShn_G4W9m20mT0VWtQBsmBBkI2cmRt4Ai8BfYdHsFzAtYKOjpBR1RpKpJmVKxIGNy0g6Z3ad2XYsh8KowlyVy8IkZ8NMwSrcUIBZGYXjHpwjzvfGvXH_5KJlnR3_uRUp4Z4Ujk2bCaKegDn11V2vxE41hqaPUnhRZxe0jRETddzsE3mu1SK8dTCROjwUl14mUNo8iTrTm4n0qDadz8BkPo-uv4BC0bunS0K3bA_3UgVp7zBlQFoFnLTO2uWp_muLEWGl67gBq9MO3brKXfGhi3kOzywzwPTuq-cVQDyEN7aL0SxCb3Hc4IdqDaMg8qHUyObpPitDQ"
        }
      },
      "display": {
        "name": "My Client Display Name",
        "uri": "https://client.foo/"
      }
    }
}"#,
    );
    let Client::Key(client) = parsed.client else {
        panic!("client by value expected");
    };
    assert_eq!(client.key.jwk["alg"], "PS512");
}

#[test]
fn section_9_1_rs_first_request() {
    let parsed = request_value(json!({
        "access_token": {
            "access": [
                "FWWIKYBQ6U56NL1",
                "dolphin-metadata"
            ]
        },
        "client": "KHRS6X63AJ7C7C4AZ9AO"
    }));
    assert_eq!(
        parsed.access_token.unwrap().as_slice()[0].access[0],
        AccessRight::Reference("FWWIKYBQ6U56NL1".into())
    );
}

/// Appendix B.2, B.4 and B.5 requests. B.2 and B.4 have a trailing comma
/// after the `access` array in the draft; it is removed.
#[test]
fn appendix_b_requests() {
    let device = request_value(json!({
        "access_token": {"access": ["dolphin-metadata", "some other thing"]},
        "client": "7C7C4AZ9KHRS6X63AJAO",
        "interact": {"start": ["redirect", "user_code"]}
    }));
    assert_eq!(
        device.interact.unwrap().start,
        [StartMode::Redirect, StartMode::UserCode]
    );

    let asynchronous = request_value(json!({
        "access_token": {
            "access": [
                {
                    "type": "photo-api",
                    "actions": ["read", "write", "dolphin"],
                    "locations": ["https://server.example.net/", "https://resource.local/other"],
                    "datatypes": ["metadata", "images"]
                },
                "read", "dolphin-metadata",
                {
                    "type": "financial-transaction",
                    "actions": ["withdraw"],
                    "identifier": "account-14-32-32-3",
                    "currency": "USD"
                },
                "some other thing"
            ]
        },
        "client": "7C7C4AZ9KHRS6X63AJAO",
        "user": {"sub_ids": [{"format": "opaque", "id": "J2G8G8O4AZ"}]}
    }));
    assert_eq!(
        asynchronous.access_token.unwrap().as_slice()[0]
            .access
            .len(),
        5
    );

    let oauth2 = request_value(json!({
        "access_token": {
            "access": ["read", "write", "dolphin"],
            "flags": [ "bearer" ]
        },
        "client": "7C7C4AZ9KHRS6X63AJAO",
        "interact": {
            "start": ["redirect"],
            "finish": {
                "method": "redirect",
                "uri": "https://client.example.net/return?state=123455",
                "nonce": "LKLTI25DK82FX4T4QFZC"
            }
        }
    }));
    let interact = oauth2.interact.unwrap();
    assert_eq!(interact.finish.unwrap().method, FinishMethod::Redirect);
    assert!(oauth2.access_token.unwrap().as_slice()[0].wants_bearer());
}

/// Appendix B.1's access object has no `type`, which §8 makes REQUIRED, and
/// B.3 presents an `mtls` key; gnapd refuses both, naming the field.
#[test]
fn appendix_b_requests_gnapd_refuses_and_its_mtls_client() {
    let err = parse_grant_request(
        json!({
            "access_token": {
                "access": [{
                    "actions": ["read", "write", "dolphin"],
                    "locations": ["https://server.example.net/", "https://resource.local/other"],
                    "datatypes": ["metadata", "images"]
                }]
            },
            "client": {"key": {"proof": "httpsig", "jwk": {"kty": "RSA", "e": "AQAB", "kid": "xyz-1", "alg": "RS256", "n": "kOB5"}}},
            "interact": {"start": ["redirect"]}
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap_err();
    assert_eq!(err.field(), "access_token.access[0].type");
    assert_eq!(err.reason(), Reason::Missing);

    let mtls = parse_grant_request(
        json!({
            "access_token": {"access": ["backend service", "nightly-routine-3"]},
            "client": {
              "key": {
                "proof": "mtls",
                "cert#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
              }
            }
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    // Appendix B's `mtls` client by certificate thumbprint reads as such.
    let Client::Key(client) = &mtls.client else {
        panic!("a key by value")
    };
    assert_eq!(client.key.proof, crate::proto::gnap::Proof::Mtls);
    assert_eq!(
        client.key.cert.as_ref().map(|c| c.thumbprint()).as_deref(),
        Some("bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2")
    );
}

/// §3's first example has a trailing comma after the continuation token's
/// `value`; it is removed, and the RFC 8792 line wrap of `redirect` joined.
#[test]
fn section_3_interaction_needed_response() {
    let response = round_trip(
        r#"{
    "interact": {
        "redirect": "https://server.example.com/interact/4CF492MLVMSW9MKMXKHQ",
        "finish": "MBDOFXG4Y5CVJCX821LH"
    },
    "continue": {
        "access_token": {
            "value": "80UPRY5NM33OMUKMKSKU"
        },
        "uri": "https://server.example.com/tx"
    }
}"#,
    );
    let cont = response.continue_.unwrap();
    assert_eq!(cont.access_token.value.expose(), "80UPRY5NM33OMUKMKSKU");
    assert_eq!(cont.wait_seconds(), 5);
}

#[test]
fn section_3_bearer_token_and_subject_response() {
    let response = round_trip(
        r#"{
    "access_token": {
        "value": "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0",
        "flags": ["bearer"],
        "manage": {
            "uri": "https://server.example.com/token/PRY5NM33O",
            "access_token": {
                "value": "B8CDFONP21-4TB8N6.BW7ONM"
            }
        }
    },
    "subject": {
        "sub_ids": [ {
          "format": "opaque",
          "id": "J2G8G8O4AZ"
        } ]
    }
}"#,
    );
    let Some(AccessTokens::Single(token)) = response.access_token else {
        panic!("single token expected");
    };
    assert!(token.is_bearer());
    assert_eq!(
        token.manage.unwrap().access_token.value.expose(),
        "B8CDFONP21-4TB8N6.BW7ONM"
    );
}

#[test]
fn section_3_subject_identifiers_response() {
    let response = round_trip(
        r#"{
    "subject": {
        "sub_ids": [ {
          "format": "opaque",
          "id": "J2G8G8O4AZ"
        }, {
          "format": "email",
          "email": "user@example.com"
        }, {
          "format": "did",
          "url": "did:example:123456"
        } ]
    }
}"#,
    );
    let ids = response.subject.unwrap().sub_ids.unwrap();
    assert_eq!(ids[1].members["email"], "user@example.com");
}

#[test]
fn section_3_1_continue_response() {
    let response = round_trip(
        r#"{
    "continue": {
        "access_token": {
            "value": "80UPRY5NM33OMUKMKSKU"
        },
        "uri": "https://server.example.com/continue",
        "wait": 60
    }
}"#,
    );
    assert_eq!(response.continue_.unwrap().wait_seconds(), 60);
}

#[test]
fn section_3_2_1_single_token_responses() {
    let bound = round_trip(
        r#"{"access_token": {
    "value": "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0",
    "manage": {
        "uri": "https://server.example.com/token/PRY5NM33O",
        "access_token": {
            "value": "B8CDFONP21-4TB8N6.BW7ONM"
        }
    },
    "access": [
        {
            "type": "photo-api",
            "actions": [
                "read",
                "write",
                "dolphin"
            ],
            "locations": [
                "https://server.example.net/",
                "https://resource.local/other"
            ],
            "datatypes": [
                "metadata",
                "images"
            ]
        },
        "read", "dolphin-metadata"
    ]
}}"#,
    );
    let Some(AccessTokens::Single(token)) = bound.access_token else {
        panic!("single token expected");
    };
    assert!(!token.is_bearer());
    assert_eq!(token.access.unwrap().len(), 3);

    let bearer = round_trip(
        r#"{"access_token": {
    "value": "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0",
    "flags": ["bearer"],
    "access": [
        "finance", "medical"
    ]
}}"#,
    );
    assert!(bearer.access_token.unwrap().as_slice()[0].is_bearer());
}

/// §3.2.2's first example closes the array with `}`; fixed to `]`.
#[test]
fn section_3_2_2_multiple_token_responses() {
    let both = round_trip(
        r#"{"access_token": [
    {
        "label": "token1",
        "value": "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0",
        "manage": {
            "uri": "https://server.example.com/token/PRY5NM33O",
            "access_token": {
                "value": "B8CDFONP21-4TB8N6.BW7ONM"
            }
        },
        "access": [ "finance" ]
    },
    {
        "label": "token2",
        "value": "UFGLO2FDAFG7VGZZPJ3IZEMN21EVU71FHCARP4J1",
        "access": [ "medical" ]
    }
]}"#,
    );
    let Some(AccessTokens::Multiple(tokens)) = both.access_token else {
        panic!("multiple tokens expected");
    };
    assert_eq!(tokens[1].label.as_deref(), Some("token2"));
    assert!(tokens[1].manage.is_none());

    let one_of_two = round_trip(
        r#"{"access_token": [
    {
        "label": "token2",
        "value": "8N6BW7OZB8CDFONP219-OS9M2PMHKUR64TBRP1LT0",
        "manage": {
            "uri": "https://server.example.com/token/PRY5NM33O",
            "access_token": {
                "value": "B8CDFONP21-4TB8N6.BW7ONM"
            }
        },
        "access": [ "fruits" ]
    }
]}"#,
    );
    assert!(matches!(one_of_two.access_token, Some(AccessTokens::Multiple(ref t)) if t.len() == 1));
}

#[test]
fn section_3_3_interaction_responses() {
    for text in [
        r#"{"interact": {"redirect": "https://interact.example.com/4CF492MLVMSW9MKMXKHQ"}}"#,
        r#"{"interact": {"app": "https://app.example.com/launch?tx=4CF492MLV"}}"#,
        r#"{"interact": {"user_code": "A1BC3DFF"}}"#,
        r#"{"interact": {"user_code_uri": {"code": "A1BC3DFF", "uri": "https://s.example/device"}}}"#,
        r#"{"interact": {"finish": "MBDOFXG4Y5CVJCX821LH"}}"#,
    ] {
        round_trip(text);
    }
}

#[test]
fn section_3_4_subject_response() {
    let response = round_trip(
        r#"{"subject": {
  "sub_ids": [ {
    "format": "opaque",
    "id": "XUT2MFM1XBIKJKSDU8QM"
  } ],
  "assertions": [ {
    "format": "id_token",
    "value": "eyj..."
  } ]
}}"#,
    );
    assert_eq!(
        response.subject.unwrap().assertions.unwrap()[0].value,
        "eyj..."
    );
}

#[test]
fn section_3_5_instance_id_response() {
    let response = round_trip(
        r#"{
    "instance_id": "7C7C4AZ9KHRS6X63AJAO",
    "access_token": {
        "value": "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0"
    }
}"#,
    );
    assert_eq!(
        response.instance_id.as_deref(),
        Some("7C7C4AZ9KHRS6X63AJAO")
    );
}

#[test]
fn section_3_6_error_responses() {
    let object = round_trip(
        r#"{
    "error": {
        "code": "user_denied",
        "description": "The RO denied the request"
    }
}"#,
    );
    assert_eq!(
        object.error,
        Some(GrantError::described(
            ErrorCode::UserDenied,
            "The RO denied the request"
        ))
    );
    // The string form reads as the same code and is re-sent as an object.
    let string: GrantResponse = serde_json::from_str(r#"{"error": "user_denied"}"#).unwrap();
    assert_eq!(string.error, Some(GrantError::new(ErrorCode::UserDenied)));
    assert_eq!(
        serde_json::to_value(&string).unwrap(),
        json!({"error": {"code": "user_denied"}})
    );
}

#[test]
fn section_5_responses() {
    // §5.1 and §5.2: tokens and subject after approval.
    round_trip(
        r#"{
    "access_token": {
        "value": "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0",
        "manage": {
            "uri": "https://server.example.com/token/PRY5NM33O",
            "access_token": {
                "value": "B8CDFONP21-4TB8N6.BW7ONM"
            }
        }
    },
    "subject": {
        "sub_ids": [ {
          "format": "opaque",
          "id": "J2G8G8O4AZ"
        } ]
    }
}"#,
    );
    // §5.1: denied, with `continue` (string form of the error).
    let denied: GrantResponse = serde_json::from_str(
        r#"{
    "error": "user_denied",
    "continue": {
        "access_token": {
            "value": "33OMUKMKSKU80UPRY5NM"
        },
        "uri": "https://server.example.com/continue",
        "wait": 30
    }
}"#,
    )
    .unwrap();
    assert_eq!(denied.error.unwrap().code, ErrorCode::UserDenied);
    assert_eq!(denied.continue_.unwrap().wait, Some(30));
    // §5.2: still pending.
    round_trip(
        r#"{
    "continue": {
        "access_token": {
            "value": "33OMUKMKSKU80UPRY5NM"
        },
        "uri": "https://server.example.com/continue",
        "wait": 30
    }
}"#,
    );
    // §5.2: polled too often, grant finalized.
    let finished: GrantResponse =
        serde_json::from_str(r#"{"error": "too_many_attempts"}"#).unwrap();
    assert!(finished.continue_.is_none());
    assert_eq!(finished.error.unwrap().code, ErrorCode::TooManyAttempts);
    // §5.3: approved with continuation, before and after the modification.
    for text in [
        r#"{
    "continue": {
        "access_token": {
            "value": "80UPRY5NM33OMUKMKSKU"
        },
        "uri": "https://server.example.com/continue",
        "wait": 30
    },
    "access_token": {
        "value": "RP1LT0-OS9M2P_R64TB",
        "access": [
            "read", "write"
        ]
    }
}"#,
        r#"{
    "continue": {
        "access_token": {
            "value": "M33OMUK80UPRY5NMKSKU"
        },
        "uri": "https://server.example.com/continue",
        "wait": 30
    },
    "access_token": {
        "value": "0EVKC7-2ZKwZM_6N760",
        "access": [
            "read"
        ]
    }
}"#,
    ] {
        round_trip(text);
    }
}

#[test]
fn section_6_token_management_responses() {
    round_trip(
        r#"{
    "access_token": {
        "value": "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0",
        "flags": ["bearer"],
        "manage": {
            "uri": "https://server.example.com/token/PRY5NM33O",
            "access_token": {
                "value": "B8CDFONP21-4TB8N6.BW7ONM"
            }
        }
    }
}"#,
    );
    let rotated = round_trip(
        r#"{
    "access_token": {
        "value": "FP6A8H6HY37MH13CK76LBZ6Y1UADG6VEUPEER5H2",
        "manage": {
            "uri": "https://server.example.com/token/PRY5NM33O",
            "access_token": {
                "value": "B8CDFONP21-4TB8N6.BW7ONM"
            }
        },
        "expires_in": 3600,
        "access": [
            {
                "type": "photo-api",
                "actions": [
                    "read",
                    "write",
                    "dolphin"
                ],
                "locations": [
                    "https://server.example.net/",
                    "https://resource.local/other"
                ],
                "datatypes": [
                    "metadata",
                    "images"
                ]
            },
            "read", "dolphin-metadata"
        ]
    }
}"#,
    );
    assert_eq!(
        rotated.access_token.unwrap().as_slice()[0].expires_in,
        Some(3600)
    );
}

/// Appendix B responses. B.1's first response lacks the comma after
/// `interact` (added). Its final response, and B.2's and B.4's, give
/// `manage` as a string, and B.2's first gives `user_code` as an object:
/// both shapes predate the normative §3.2.1 and §3.3.3 text, and are refused.
#[test]
fn appendix_b_responses() {
    round_trip(
        r#"{
    "interact": {
      "redirect": "https://server.example.com/interact/4CF492MLVMSW9MKM",
      "finish": "MBDOFXG4Y5CVJCX821LH"
    },
    "continue": {
        "access_token": {
            "value": "80UPRY5NM33OMUKMKSKU"
        },
        "uri": "https://server.example.com/continue"
    },
    "instance_id": "7C7C4AZ9KHRS6X63AJAO"
}"#,
    );
    for text in [
        r#"{"continue": {"access_token": {"value": "G7YQT4KQQ5TZY9SLSS5E"}, "uri": "https://server.example.com/continue/ATWHO4Q1WV", "wait": 60}}"#,
        r#"{"continue": {"access_token": {"value": "BI9QNW6V9W3XFJK4R02D"}, "uri": "https://server.example.com/continue", "wait": 60}}"#,
    ] {
        round_trip(text);
    }

    let stale_manage = r#"{
    "access_token": {
        "value": "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0",
        "manage": "https://server.example.com/token",
        "access": [
            "backend service", "nightly-routine-3"
        ]
    }
}"#;
    assert!(serde_json::from_str::<GrantResponse>(stale_manage).is_err());
    let stale_user_code = r#"{
    "interact": {
        "redirect": "https://srv.ex/MXKHQ",
        "user_code": {
            "code": "A1BC3DFF"
        }
    },
    "continue": {
        "access_token": {
            "value": "80UPRY5NM33OMUKMKSKU"
        },
        "uri": "https://server.example.com/continue/VGJKPTKC50",
        "wait": 60
    }
}"#;
    assert!(serde_json::from_str::<GrantResponse>(stale_user_code).is_err());
}

#[test]
fn a_durable_flag_round_trips() {
    let response =
        round_trip(r#"{"access_token": {"value": "abc", "access": ["x"], "flags": ["durable"]}}"#);
    assert_eq!(
        response.access_token.unwrap().as_slice()[0].flags,
        [ResponseFlag::Durable]
    );
}
