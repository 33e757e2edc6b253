"""The bus: a broker connection, a transactional outbox with its relay, an inbox, a consumer runner."""
