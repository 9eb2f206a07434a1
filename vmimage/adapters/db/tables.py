"""The database schema (SQLAlchemy Core). Alembic migrations are generated from it."""

from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, DateTime, ForeignKey, ForeignKeyConstraint, Index, Integer,
                        MetaData, String, Table, Text, UniqueConstraint, true)

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

images = Table(
    "images", metadata,
    Column("id", String(36), primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("name", String(255)),
    Column("status", String(30), nullable=False),
    Column("visibility", String(20), nullable=False),
    Column("protected", Boolean, nullable=False, default=False),
    Column("os_hidden", Boolean, nullable=False, default=False),
    Column("disk_format", String(20)),
    Column("container_format", String(20)),
    Column("min_disk", Integer, nullable=False, default=0),
    Column("min_ram", Integer, nullable=False, default=0),
    Column("size", BigInteger),
    Column("virtual_size", BigInteger),
    Column("checksum", String(32)),
    Column("os_hash_algo", String(64)),
    Column("os_hash_value", String(128)),
    Column("os_version", String(255)),
    Column("architecture", String(30)),
    Column("boot_mode", String(10)),
    Column("kind", String(20), nullable=False),
    Column("source", String(20), nullable=False),
    Column("source_ref", String(1024)),
    Column("description", String(1024)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("seq", Integer, nullable=False, unique=True),
    Column("ref", String(64), nullable=False, unique=True),
    Column("os_family", String(10)),
    Column("os_distribution", String(255)),
    Column("parent_id", String(36), index=True),
    Column("device", String(10)),
    Column("volume_type", String(20)),
    Column("iops", Integer),
    Column("os_release", String(64)),
    Column("auto_delete", Boolean),
    Column("region", String(64), nullable=False, server_default=""),
    Column("insight", Text),        # JSON: core/insight.py
    Index("ix_images_owner_status", "owner", "status"),
    Index("ix_images_visibility_status", "visibility", "status"),
    Index("ix_images_created_at_id", "created_at", "id"),
    Index("ix_images_name", "name"),
    Index("ix_images_region_owner", "region", "owner"),
)

image_properties = Table(
    "image_properties", metadata,
    Column("image_id", String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_image_properties_name", "name"),
)

image_tags = Table(
    "image_tags", metadata,
    Column("image_id", String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("value", String(255), primary_key=True),
    Column("position", Integer, nullable=False, server_default="0"),     # the order given
    Index("ix_image_tags_value", "value"),
)

image_locations = Table(
    "image_locations", metadata,
    Column("image_id", String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("store", String(255), nullable=False),
    Column("key", String(2048), nullable=False),
    Column("meta", Text, nullable=False, server_default="{}"),   # JSON: the location's metadata
    Index("ix_image_locations_store", "store"),
)

image_members = Table(
    "image_members", metadata,
    Column("image_id", String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("member_id", String(255), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_image_members_member_id", "member_id"),
)

project_quotas = Table(
    "project_quotas", metadata,
    Column("project_id", String(64), primary_key=True),
    Column("resource", String(64), primary_key=True),
    Column("limit", BigInteger, nullable=False),
)

bucket_grants = Table(
    "bucket_grants", metadata,
    Column("bucket", String(255), primary_key=True),
    Column("project_id", String(64), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_bucket_grants_project_id", "project_id"),
)

# Identity

projects = Table(
    "projects", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("domain_id", String(64), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", DateTime, nullable=False),
    Column("region", String(64)),       # the region the project acts in (IMS); None: the default
    UniqueConstraint("domain_id", "name", name="uq_projects_domain_name"),
)

users = Table(
    "users", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("domain_id", String(64), nullable=False),
    Column("password_hash", String(512), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("default_project_id", String(64)),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("domain_id", "name", name="uq_users_domain_name"),
)

role_assignments = Table(
    "role_assignments", metadata,
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(64), primary_key=True),
)

tokens = Table(
    "tokens", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("project_id", String(64)),
    Column("methods", String(255), nullable=False),
    Column("audit_id", String(32), nullable=False),
    Column("issued_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False, index=True),
    Column("revoked", Boolean, nullable=False, default=False),
    Index("ix_tokens_user_id", "user_id"),      # a user's tokens go with the user
)

access_keys = Table(
    "access_keys", metadata,
    Column("access_key", String(64), primary_key=True),
    # Kept retrievable: HMAC signature checks need the secret itself.
    Column("secret", String(128), nullable=False),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", String(64)),
    Column("created_at", DateTime, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True, server_default=true()),
    Index("ix_access_keys_user_id", "user_id"),
)

# One row: a number moved on by every revocation (a user disabled or deleted, an access key
# disabled or deleted, a token revoked), so that every process drops the tokens it validated
# earlier at once (adapters/db/revocations.py).
revocation_epoch = Table(
    "revocation_epoch", metadata,
    Column("id", Integer, primary_key=True),
    Column("epoch", BigInteger, nullable=False),
)

# Inventory: servers, volumes (their disks), snapshots

servers = Table(
    "servers", metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("image_id", String(36), index=True),
    Column("status", String(20), nullable=False),
    Column("task", String(64)),
    Column("memory_mb", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("seq", Integer, nullable=False, unique=True),
    Column("cpu_count", Integer, nullable=False, server_default="1"),
)

volumes = Table(
    "volumes", metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("name", String(255)),
    Column("size_gb", Integer, nullable=False),
    Column("type", String(20), nullable=False),
    Column("category", String(10), nullable=False),
    Column("encrypted", Boolean, nullable=False),
    Column("status", String(20), nullable=False),
    Column("server_id", String(64), index=True),
    Column("device", String(10)),
    Column("image_id", String(36), index=True),
    Column("snapshot_id", String(64), index=True),
    Column("busy", String(64)),
    Column("created_at", DateTime, nullable=False),
    Column("seq", Integer, nullable=False, unique=True),
    Column("provisioned_iops", Integer),
)

snapshots = Table(
    "snapshots", metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("volume_id", String(64), nullable=False),
    Column("name", String(255)),
    Column("size_gb", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

jobs = Table(
    "jobs", metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("project_id", String(64), nullable=False, index=True),
    Column("status", String(10), nullable=False),
    Column("progress", Integer, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("payload", Text, nullable=False),
    Column("entities", Text, nullable=False),
    Column("error_code", String(64)),
    Column("fail_reason", Text),
    Column("worker", String(255)),
    Column("heartbeat_at", DateTime),
    Column("created_at", DateTime, nullable=False),
    Column("begin_time", DateTime),
    Column("end_time", DateTime),
    Column("image_id", String(36)),     # the image the job works on, if any (Glance's image tasks)
    Index("ix_jobs_status_created_at", "status", "created_at"),
    Index("ix_jobs_image_id", "image_id"),
    Index("ix_jobs_project_id_begin_time", "project_id", "begin_time"),   # when a project's job last started
)

# An upload (or stage) in flight belongs to the process that took it, as a job belongs to
# its worker: the owner heartbeats it, and a surviving process takes over the upload of a
# dead one (resets the image, removes the partial data it can reach).
uploads = Table(
    "uploads", metadata,
    Column("image_id", String(36), primary_key=True),
    Column("status", String(30), nullable=False),      # the image status the upload holds
    Column("store", String(255), nullable=False),      # where the data goes, under key
    Column("key", String(255), nullable=False),
    Column("worker", String(255), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=False),
    Index("ix_uploads_worker", "worker"),
)

# Data no image references any more (a deleted image's bytes, a failed job's, a stage...),
# recorded in the transaction that dropped the last reference and kept until the reaper
# (core/services/reaper.py) has deleted it from its store.
data_to_reap = Table(
    "data_to_reap", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("store", String(255), nullable=False),
    Column("key", String(2048), nullable=False),
    Column("partial", Boolean, nullable=False),          # abort the key's unfinished writes too
    Column("image_id", String(36)),                      # whose data it was
    Column("created_at", DateTime, nullable=False),
    Column("due_at", DateTime, nullable=False, index=True),   # next try (a claim leases it till then)
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("claimed_by", String(255)),                   # the process reaping it now (core/liveness.py id)
)

# The audit trail (core/audit.py): kept VMIMAGE_AUDIT_DAYS, pruned at the service's start.
audit_events = Table(
    "audit_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("outcome", String(10), nullable=False),       # success | failure | braked
    Column("target", String(300)),
    Column("target_project_id", String(255)),
    Column("detail", String(300)),
    Column("user_id", String(255)),
    Column("user_name", String(300)),
    Column("project_id", String(255)),
    Column("address", String(100)),                      # the client's, or "cli"
    Column("request_id", String(100)),
)

# Failed logins, counted across processes: per user (consecutive) and per client address.
auth_failures = Table(
    "auth_failures", metadata,
    Column("subject", String(300), primary_key=True),   # "user:<domain>/<name>" or "addr:<ip>"
    Column("failures", Integer, nullable=False),         # consecutive (user) / in the window (address)
    Column("window_start", DateTime, nullable=False),
    Column("blocked_until", DateTime),
)

# --- Metadata definitions catalog (Glance metadefs) -------------------------------------------
# Children point at the namespace's surrogate id, so renaming a namespace touches one row
# and deleting it cascades to its content.

metadef_namespaces = Table(
    "metadef_namespaces", metadata,
    Column("id", String(36), primary_key=True),
    Column("namespace", String(80), nullable=False, unique=True),
    Column("display_name", String(80)),
    Column("description", Text),
    Column("visibility", String(20), nullable=False),
    Column("protected", Boolean, nullable=False, default=False),
    Column("owner", String(255)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_metadef_namespaces_owner", "owner"),
)

metadef_objects = Table(
    "metadef_objects", metadata,
    Column("id", String(36), primary_key=True),
    Column("namespace_id", String(36), ForeignKey("metadef_namespaces.id", ondelete="CASCADE"),
           nullable=False),
    Column("name", String(80), nullable=False),
    Column("description", Text),
    Column("required", Text),       # JSON list of property names
    Column("properties", Text),     # JSON object: property name -> definition
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("namespace_id", "name", name="uq_metadef_objects_namespace_name"),
)

metadef_properties = Table(
    "metadef_properties", metadata,
    Column("id", String(36), primary_key=True),
    Column("namespace_id", String(36), ForeignKey("metadef_namespaces.id", ondelete="CASCADE"),
           nullable=False),
    Column("name", String(80), nullable=False),
    Column("definition", Text, nullable=False),   # JSON object, the name left out
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("namespace_id", "name", name="uq_metadef_properties_namespace_name"),
)

metadef_tags = Table(
    "metadef_tags", metadata,
    Column("id", String(36), primary_key=True),
    Column("namespace_id", String(36), ForeignKey("metadef_namespaces.id", ondelete="CASCADE"),
           nullable=False),
    Column("name", String(80), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("namespace_id", "name", name="uq_metadef_tags_namespace_name"),
)

metadef_resource_types = Table(
    "metadef_resource_types", metadata,
    Column("name", String(80), primary_key=True),
    Column("protected", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

metadef_namespace_resource_types = Table(
    "metadef_namespace_resource_types", metadata,
    Column("namespace_id", String(36), primary_key=True),
    Column("resource_type", String(80), primary_key=True),
    Column("prefix", String(80)),
    Column("properties_target", String(80)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    # Named here: the conventional names pass PostgreSQL's 63-character limit.
    ForeignKeyConstraint(["namespace_id"], ["metadef_namespaces.id"], ondelete="CASCADE",
                         name="fk_metadef_ns_resource_types_namespace_id"),
    ForeignKeyConstraint(["resource_type"], ["metadef_resource_types.name"],
                         name="fk_metadef_ns_resource_types_resource_type"),
    Index("ix_metadef_namespace_resource_types_resource_type", "resource_type"),
)
# --- end of metadefs ---------------------------------------------------------------------------

# Nonces of signed requests seen within the replay window (access-key faces).
request_nonces = Table(
    "request_nonces", metadata,
    Column("nonce", String(128), primary_key=True),
    Column("seen_at", DateTime, nullable=False, index=True),
)
