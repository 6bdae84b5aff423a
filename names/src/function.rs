//! The Lambda functions of the stack, by the name each is known by.

spelled_enum! {
    /// The Lambda functions of the stack.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Function {
        Submit = "submit",
        Status = "status",
        Logs = "logs",
        List = "list",
        Cancel = "cancel",
        Process = "process",
        Reconcile = "reconcile",
        /// Delivers the finished jobs' signed webhooks (fed by the webhooks queue).
        Webhook = "webhook",
    }
}

impl Function {
    /// Physical function name.
    pub fn name(self, prefix: &str) -> String {
        format!("{prefix}-{}", self.as_str())
    }

    /// Name of the function's execution role.
    pub fn role_name(self, prefix: &str) -> String {
        format!("{}-function", self.name(prefix))
    }

    /// Where `make build` puts the function's deployment package, relative to the workspace root.
    pub fn zip_path(self) -> String {
        format!("target/lambda/{}/bootstrap.zip", self.as_str())
    }
}
