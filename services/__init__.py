"""The platform's five services; none imports another."""
