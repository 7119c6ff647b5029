"""Data: dataset versions and data remotes.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table('data_remotes',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_data_remotes'))
    )
    op.create_table('dataset_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=80), nullable=False),
    sa.Column('is_dir', sa.Boolean(), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('file_count', sa.Integer(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('rows', sa.BigInteger(), nullable=True),
    sa.Column('schema', sa.Text(), nullable=True),
    sa.Column('profile', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=1000), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('forced', sa.Boolean(), nullable=False),
    sa.Column('lifecycle_stage', sa.String(length=16), server_default='active', nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset_versions')),
    sa.UniqueConstraint('name', 'version', name=op.f('uq_dataset_versions_name_version'))
    )
    op.create_index(op.f('ix_dataset_versions_digest'), 'dataset_versions', ['digest'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_dataset_versions_digest'), table_name='dataset_versions')
    op.drop_table('dataset_versions')
    op.drop_table('data_remotes')
