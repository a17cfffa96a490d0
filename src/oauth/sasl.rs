//! The SASL initial responses that carry a bearer token. Both are sent base64-encoded by
//! the IMAP and SMTP clients; these are the bytes before encoding.

/// XOAUTH2 (Google's and Microsoft's documented format):
/// `user=ADDRESS ^A auth=Bearer TOKEN ^A ^A`.
pub fn xoauth2(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}

/// OAUTHBEARER (RFC 7628 §3.1): a GS2 header naming the user, then the host, port and
/// token as key/value pairs separated by ^A.
pub fn oauthbearer(user: &str, host: &str, port: u16, token: &str) -> String {
    // RFC 5801 §4: in a saslname, ',' and '=' are escaped as =2C and =3D.
    let user = user.replace('=', "=3D").replace(',', "=2C");
    format!("n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoauth2_is_the_documented_string() {
        // The example of Google's XOAUTH2 protocol page, before base64.
        assert_eq!(
            xoauth2(
                "someuser@example.com",
                "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
            ),
            "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
    }

    #[test]
    fn oauthbearer_follows_rfc_7628() {
        // RFC 7628 §4.1's example, with its user and token.
        assert_eq!(
            oauthbearer(
                "user@example.com",
                "server.example.com",
                143,
                "vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg=="
            ),
            "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg==\x01\x01"
        );
        assert!(oauthbearer("a,b=c@x", "h", 1, "t").starts_with("n,a=a=2Cb=3Dc@x,"));
    }
}
