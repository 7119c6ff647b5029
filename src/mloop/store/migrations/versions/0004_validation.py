"""validation tables: versioned suites and suite-to-dataset attachments.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table('validation_attachments',
    sa.Column('dataset', sa.String(length=128), nullable=False),
    sa.Column('suite', sa.String(length=160), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('dataset', name=op.f('pk_validation_attachments'))
    )
    op.create_table('validation_suites',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('definition', sa.Text(), nullable=False),
    sa.Column('expectations', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_validation_suites')),
    sa.UniqueConstraint('name', 'version', name=op.f('uq_validation_suites_name_version'))
    )


def downgrade() -> None:
    op.drop_table('validation_suites')
    op.drop_table('validation_attachments')
