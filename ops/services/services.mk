# Real Neo4j, Kafka and Redis on 127.0.0.1 for the integration tests (no Docker).
# Include after STAMP is defined (the readiness probes use .venv's drivers):
#   include ops/services/services.mk
# Details, ports, variables and timings: ops/docs/services.md.

SERVICES_SH := bash ops/services/services.sh

.PHONY: services-up services-down services-status services-clean

services-up: $(STAMP)
	@$(SERVICES_SH) up

services-down:
	@$(SERVICES_SH) down

services-status:
	@$(SERVICES_SH) status

# Stops everything and deletes the servers' data (the fetched jars stay).
services-clean:
	@$(SERVICES_SH) clean

