//! Which function's role the AWS calls of a task are made as.
//!
//! A deployed function serves one handler and signs with its own role's credentials from the
//! environment. Where one process serves several (the local stack, the tests), each handler's
//! entry point runs its work [`acting_as`] its function, and an SDK configuration made by
//! [`sdk_config`] signs every call with the credentials of the function whose work makes it, so
//! the emulator authorizes each call as AWS would authorize that function's role. Calls made
//! outside any handler (a test setting up or inspecting resources) sign with `outside`.

use std::collections::BTreeMap;
use std::future::Future;

use aws_credential_types::provider::{future, ProvideCredentials};
use aws_credential_types::Credentials;
use names::Function;

tokio::task_local! {
    static CURRENT: Function;
}

/// Runs `work` as `function`: the AWS calls it makes are that function's. The work is boxed: the
/// handlers' futures are large, and one more level of them by value overflows a test thread's
/// stack in debug builds.
pub async fn acting_as<F: Future>(function: Function, work: F) -> F::Output {
    CURRENT.scope(function, Box::pin(work)).await
}

/// The function whose work this task is doing, if any.
pub fn current() -> Option<Function> {
    CURRENT.try_with(|f| *f).ok()
}

/// Credentials by the function acting (see the module's doc).
#[derive(Clone, Debug)]
pub struct PerFunction {
    pub by_function: BTreeMap<Function, Credentials>,
    pub outside: Credentials,
}

impl ProvideCredentials for PerFunction {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let credentials = current().and_then(|f| self.by_function.get(&f)).unwrap_or(&self.outside).clone();
        future::ProvideCredentials::ready(Ok(credentials))
    }
}

/// The standard SDK configuration (region and endpoint from the environment), signing with the
/// acting function's access key (`keys`: function -> (key id, secret)) and with `outside` where
/// no function acts. Nothing is cached, so each call signs as the function making it.
pub async fn sdk_config(keys: &BTreeMap<Function, (String, String)>, outside: (String, String)) -> aws_config::SdkConfig {
    let credentials = |(id, secret): &(String, String)| Credentials::new(id, secret, None, None, "per-function");
    let provider = PerFunction {
        by_function: keys.iter().map(|(f, k)| (*f, credentials(k))).collect(),
        outside: credentials(&outside),
    };
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .credentials_provider(provider)
        .identity_cache(aws_config::identity::IdentityCache::no_cache())
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_acting_function_chooses_the_credentials() {
        let keys = BTreeMap::from([(Function::Process, ("AKPROCESS".to_owned(), "s1".to_owned()))]);
        let provider = PerFunction {
            by_function: keys.iter().map(|(f, (id, s))| (*f, Credentials::new(id, s, None, None, "t"))).collect(),
            outside: Credentials::new("OUTSIDE", "s", None, None, "t"),
        };
        let id = || async { provider.provide_credentials().await.unwrap().access_key_id().to_owned() };
        assert_eq!(id().await, "OUTSIDE");
        assert_eq!(acting_as(Function::Process, id()).await, "AKPROCESS");
        // A function without a key of its own signs as outside (the harness decides what that is).
        assert_eq!(acting_as(Function::Status, id()).await, "OUTSIDE");
        assert_eq!(current(), None);
    }
}
