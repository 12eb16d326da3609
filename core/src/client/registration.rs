//! Registering a device as an account's primary by phone number and code.

use rand_core::OsRng;

use super::*;
use crate::error::StoreError;
use crate::store::IdentityKeyStore;
use crate::wire::relay::{self as proto, ClientKind};

impl Client {
    /// Ask the relay to send a verification code to `phone` (E.164).
    pub async fn request_code(&self, phone: &str) -> Result<(), ClientError> {
        let phone = phone.to_string();
        self.unauthenticated(|_| Ok(ClientKind::RequestCode(proto::RequestCode { phone })))
            .await
            .map(|_| ())
    }

    /// Register this device as the primary device (1) of `phone` with the code it
    /// received. Afterwards [`start`](Self::start) connects as this account.
    pub async fn verify_code(&self, phone: &str, code: &str) -> Result<(), ClientError> {
        let (identity, registration_id) = self.with_store(|s| {
            Ok::<_, StoreError>((s.identity_key_pair()?, s.local_registration_id()?))
        })?;
        let device_id = 1;
        self.unauthenticated(|nonce| {
            let sig = identity
                .private_key()
                .sign(&proto::auth_message(nonce, phone, device_id), &mut OsRng);
            Ok(ClientKind::Register(proto::Register {
                phone: phone.to_string(),
                code: code.to_string(),
                device_id,
                identity_key: identity.identity_key().serialize().to_vec(),
                registration_id,
                signature: sig.to_vec(),
            }))
        })
        .await?;
        self.with_store(|s| {
            s.transaction(|s| {
                s.set_setting(ACCOUNT_USER, phone.as_bytes())?;
                s.set_setting(ACCOUNT_DEVICE, &device_id.to_be_bytes())
            })
        })?;
        Ok(())
    }
}
