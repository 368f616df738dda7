//! The signed request layer: one method per RFC 9635 exchange, each
//! signed under the GNAP profile.

use super::*;

/// Signs and sends the requests of the protocol, one exchange each.
pub struct SigningClient {
    http: Http,
    key: SigningKey,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SigningClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningClient")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl SigningClient {
    /// Signs with `key`, reading the time from `clock`.
    pub fn new(http: Http, key: SigningKey, clock: Arc<dyn Clock>) -> Self {
        Self { http, key, clock }
    }

    /// The key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The HTTP client.
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// The current time.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Adds `Authorization: GNAP token` (if any) and signs `request`.
    pub fn sign(&self, request: &mut HttpRequest, token: Option<&str>) -> Result<(), ClientError> {
        if let Some(token) = token {
            request.fields.set("Authorization", format!("GNAP {token}"));
        }
        sign_gnap(request, &self.key, self.now(), &SignOptions::default())
            .map_err(|e| ClientError::Sign(e.to_string()))?;
        Ok(())
    }

    async fn json(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<&Value>,
        referer: Option<&str>,
    ) -> Result<Answer, ClientError> {
        let mut request = HttpRequest::new(method, uri);
        if let Some(body) = body {
            request.body =
                serde_json::to_vec(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
            request.fields.append("Content-Type", "application/json");
        }
        request.fields.append("Accept", "application/json");
        if let Some(referer) = referer {
            request.fields.append("Referer", referer);
        }
        self.sign(&mut request, token)?;
        self.http
            .exchange(&request, AS_TIMEOUT, MAX_AS_RESPONSE)
            .await
    }

    /// An unsigned call to the resource, to read its challenge (§9.1).
    pub async fn challenge(&self, resource: &str) -> Result<Challenge, ClientError> {
        let request = HttpRequest::new("GET", resource)
            .with_field("Accept", "application/json, text/event-stream");
        let answer = self
            .http
            .exchange(&request, AS_TIMEOUT, MAX_AS_RESPONSE)
            .await?;
        if answer.status != 401 {
            return Err(ClientError::NoChallenge {
                resource: resource.to_owned(),
                status: answer.status,
            });
        }
        Ok(gnap_challenge(answer.header_values("www-authenticate"))?)
    }

    /// `OPTIONS` on the grant endpoint (§9). `None` when the AS does not
    /// answer with a discovery document: it is an optimisation only.
    pub async fn discovery(&self, as_uri: &str) -> Option<Discovery> {
        let request = HttpRequest::new("OPTIONS", as_uri).with_field("Accept", "application/json");
        let answer = self
            .http
            .exchange(&request, AS_TIMEOUT, MAX_AS_RESPONSE)
            .await
            .ok()?;
        if answer.status != 200 {
            return None;
        }
        serde_json::from_slice(&answer.body).ok()
    }

    /// A grant request (§2), with `Referer` naming the resource that sent
    /// the agent here (§9.1).
    pub async fn grant(
        &self,
        as_uri: &str,
        body: &Value,
        referer: Option<&str>,
    ) -> Result<Answer, ClientError> {
        self.json("POST", as_uri, None, Some(body), referer).await
    }

    /// A continuation call (§5.1, §5.2: POST; no body while polling).
    pub async fn continue_grant(
        &self,
        uri: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ClientError> {
        self.json("POST", uri, Some(token), body, None).await
    }

    /// Deletes a grant (§5.4).
    pub async fn delete_grant(&self, uri: &str, token: &str) -> Result<Answer, ClientError> {
        self.json("DELETE", uri, Some(token), None, None).await
    }

    /// Rotates a token (§6.1) through its management URI.
    pub async fn rotate(&self, uri: &str, manage_token: &str) -> Result<Answer, ClientError> {
        self.json("POST", uri, Some(manage_token), None, None).await
    }

    /// Revokes a token (§6.2).
    pub async fn revoke(&self, uri: &str, manage_token: &str) -> Result<Answer, ClientError> {
        self.json("DELETE", uri, Some(manage_token), None, None)
            .await
    }
}
