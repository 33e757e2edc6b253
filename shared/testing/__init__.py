"""Test harness: real PostgreSQL and RabbitMQ from the environment (or testcontainers where a Docker
engine exists), a database and bus namespace per test run, token minting, and a bus probe."""
