pub const AGENT_SEARCH_URL_TEMPLATE: &str = "agent_search_url_template";
