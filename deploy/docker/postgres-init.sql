-- One database per service (Compose only; in Kubernetes each service has its own CloudNativePG cluster).
CREATE DATABASE onex_identity;
CREATE DATABASE onex_registry;
CREATE DATABASE onex_plans;
CREATE DATABASE onex_applications;
CREATE DATABASE onex_notify;
