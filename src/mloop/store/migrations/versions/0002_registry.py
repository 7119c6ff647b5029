"""Registry: registered models, versions, tags, aliases and alias history.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table('registered_models',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('lifecycle_stage', sa.String(length=16), server_default='active', nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_registered_models'))
    )
    op.create_table('model_version_tags',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('name', 'version', 'key', name=op.f('pk_model_version_tags'))
    )
    op.create_table('alias_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('alias', sa.String(length=128), nullable=False),
    sa.Column('from_version', sa.Integer(), nullable=True),
    sa.Column('to_version', sa.Integer(), nullable=True),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alias_history'))
    )
    op.create_index(op.f('ix_alias_history_name_alias_ts'), 'alias_history', ['name', 'alias', 'ts'], unique=False)
    op.create_table('registered_model_tags',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['name'], ['registered_models.name'], name=op.f('fk_registered_model_tags_name_registered_models')),
    sa.PrimaryKeyConstraint('name', 'key', name=op.f('pk_registered_model_tags'))
    )
    op.create_table('model_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=True),
    sa.Column('digest', sa.String(length=80), nullable=False),
    sa.Column('flavor', sa.String(length=32), nullable=False),
    sa.Column('task', sa.String(length=32), nullable=True),
    sa.Column('signature', sa.Text(), nullable=False),
    sa.Column('manifest', sa.Text(), nullable=False),
    sa.Column('metrics', sa.Text(), nullable=False),
    sa.Column('datasets', sa.Text(), nullable=False),
    sa.Column('validation_data', sa.String(length=80), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('lifecycle_stage', sa.String(length=16), server_default='active', nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['name'], ['registered_models.name'], name=op.f('fk_model_versions_name_registered_models')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions'))
    )
    op.create_index(op.f('ix_model_versions_digest'), 'model_versions', ['digest'], unique=False)
    op.create_index(op.f('ix_model_versions_name_version'), 'model_versions', ['name', 'version'], unique=True)
    op.create_index(op.f('ix_model_versions_run_id'), 'model_versions', ['run_id'], unique=False)
    op.create_table('model_aliases',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('alias', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['name'], ['registered_models.name'], name=op.f('fk_model_aliases_name_registered_models')),
    sa.PrimaryKeyConstraint('name', 'alias', name=op.f('pk_model_aliases'))
    )


def downgrade() -> None:
    op.drop_table('model_aliases')
    op.drop_index(op.f('ix_model_versions_run_id'), table_name='model_versions')
    op.drop_index(op.f('ix_model_versions_name_version'), table_name='model_versions')
    op.drop_index(op.f('ix_model_versions_digest'), table_name='model_versions')
    op.drop_table('model_versions')
    op.drop_table('registered_model_tags')
    op.drop_index(op.f('ix_alias_history_name_alias_ts'), table_name='alias_history')
    op.drop_table('alias_history')
    op.drop_table('model_version_tags')
    op.drop_table('registered_models')
