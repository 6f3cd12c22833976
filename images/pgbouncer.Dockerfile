# DatabaseProxy pods: Debian's PgBouncer (and psql, for debugging), run by the operator as
# uid 10001 with its own command (sh and awk add the password to the configuration at
# start; klambda_operator.builders). Where no registry is reachable, scripts/cluster/images.sh
# builds the same from Debian's archive with debootstrap (base-image.sh pgbouncer).
#   docker build -f images/pgbouncer.Dockerfile -t klambda/pgbouncer:0.1.0 images
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends pgbouncer postgresql-client ca-certificates \
    && rm -rf /var/lib/apt/lists/*
USER 10001:10001
EXPOSE 6432
CMD ["pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]
