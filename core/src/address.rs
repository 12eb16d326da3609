//! Addresses of peer devices.

/// A peer device: a user name (phone number, account id) and a device id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtocolAddress {
    /// The user's name.
    pub name: String,
    /// The device id (1 = first device in Signal, 0 = primary in WhatsApp's numbering).
    pub device_id: u32,
}

impl ProtocolAddress {
    /// Build an address.
    pub fn new(name: impl Into<String>, device_id: u32) -> Self {
        ProtocolAddress {
            name: name.into(),
            device_id,
        }
    }
}

impl std::fmt::Display for ProtocolAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.name, self.device_id)
    }
}
