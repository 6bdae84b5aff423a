pub const AGENT_SEARCH_URL_TEMPLATE: &str = "agent_search_url_template";
/// Computer-use jobs' models and prices (the local stack allows its stand-in's).
pub const COMPUTER_USE_MODELS: &str = "computer_use_models";
/// Base URLs of the model services over their own (the local stack points them at its stand-in).
pub const COMPUTER_USE_ENDPOINTS: &str = "computer_use_endpoints";
