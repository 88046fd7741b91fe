"""What an endpoint is configured with: the Elasticsearch ``PUT _inference`` body
(``settings``), the API key's lookup and redaction (``_auth``), and the validation helpers
that report every problem at once (``_validation``)."""
