"""Foundation: experiments, runs, params, tags, metrics, artifacts, environments, lineage, blob refs.

Revision ID: 0001
Revises: None
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table('blob_refs',
    sa.Column('digest', sa.String(length=80), nullable=False),
    sa.Column('owner_kind', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.String(length=300), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('digest', 'owner_kind', 'owner_id', name=op.f('pk_blob_refs'))
    )
    op.create_table('environments',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_environments'))
    )
    op.create_table('experiments',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('lifecycle_stage', sa.String(length=16), server_default='active', nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experiments')),
    sa.UniqueConstraint('name', name=op.f('uq_experiments_name'))
    )
    op.create_table('lineage_edges',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('from_kind', sa.String(length=32), nullable=False),
    sa.Column('from_id', sa.String(length=300), nullable=False),
    sa.Column('relation', sa.String(length=32), nullable=False),
    sa.Column('to_kind', sa.String(length=32), nullable=False),
    sa.Column('to_id', sa.String(length=300), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lineage_edges')),
    sa.UniqueConstraint('from_kind', 'from_id', 'relation', 'to_kind', 'to_id', name=op.f('uq_lineage_edges_from_kind_from_id_relation_to_kind_to_id'))
    )
    op.create_index(op.f('ix_lineage_edges_from_kind_from_id'), 'lineage_edges', ['from_kind', 'from_id'], unique=False)
    op.create_index(op.f('ix_lineage_edges_to_kind_to_id'), 'lineage_edges', ['to_kind', 'to_id'], unique=False)
    op.create_table('metric_batches',
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('batch_id', name=op.f('pk_metric_batches'))
    )
    op.create_table('runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('experiment_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('parent_id', sa.String(length=32), nullable=True),
    sa.Column('start_ms', sa.BigInteger(), nullable=False),
    sa.Column('end_ms', sa.BigInteger(), nullable=True),
    sa.Column('heartbeat_ms', sa.BigInteger(), nullable=False),
    sa.Column('heartbeat_interval_ms', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.Column('environment_id', sa.String(length=80), nullable=True),
    sa.Column('lifecycle_stage', sa.String(length=16), server_default='active', nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['environment_id'], ['environments.id'], name=op.f('fk_runs_environment_id_environments')),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], name=op.f('fk_runs_experiment_id_experiments')),
    sa.ForeignKeyConstraint(['parent_id'], ['runs.id'], name=op.f('fk_runs_parent_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    op.create_index(op.f('ix_runs_experiment_id_start_ms'), 'runs', ['experiment_id', 'start_ms'], unique=False)
    op.create_index(op.f('ix_runs_parent_id'), 'runs', ['parent_id'], unique=False)
    op.create_table('latest_metrics',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('step', sa.BigInteger(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('is_nan', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_latest_metrics_run_id_runs')),
    sa.PrimaryKeyConstraint('run_id', 'key', name=op.f('pk_latest_metrics'))
    )
    op.create_index(op.f('ix_latest_metrics_key_value'), 'latest_metrics', ['key', 'value'], unique=False)
    op.create_table('metrics',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('step', sa.BigInteger(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('is_nan', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_metrics_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metrics'))
    )
    op.create_index(op.f('ix_metrics_run_id_key_step_ts'), 'metrics', ['run_id', 'key', 'step', 'ts'], unique=False)
    op.create_table('params',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_params_run_id_runs')),
    sa.PrimaryKeyConstraint('run_id', 'key', name=op.f('pk_params'))
    )
    op.create_index(op.f('ix_params_key_value'), 'params', ['key', 'value'], unique=False)
    op.create_table('run_artifacts',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('digest', sa.String(length=80), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('is_dir', sa.Boolean(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_run_artifacts_run_id_runs')),
    sa.PrimaryKeyConstraint('run_id', 'path', name=op.f('pk_run_artifacts'))
    )
    op.create_table('tags',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_tags_run_id_runs')),
    sa.PrimaryKeyConstraint('run_id', 'key', name=op.f('pk_tags'))
    )
    op.create_index(op.f('ix_tags_key_value'), 'tags', ['key', 'value'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_tags_key_value'), table_name='tags')
    op.drop_table('tags')
    op.drop_table('run_artifacts')
    op.drop_index(op.f('ix_params_key_value'), table_name='params')
    op.drop_table('params')
    op.drop_index(op.f('ix_metrics_run_id_key_step_ts'), table_name='metrics')
    op.drop_table('metrics')
    op.drop_index(op.f('ix_latest_metrics_key_value'), table_name='latest_metrics')
    op.drop_table('latest_metrics')
    op.drop_index(op.f('ix_runs_parent_id'), table_name='runs')
    op.drop_index(op.f('ix_runs_experiment_id_start_ms'), table_name='runs')
    op.drop_table('runs')
    op.drop_table('metric_batches')
    op.drop_index(op.f('ix_lineage_edges_to_kind_to_id'), table_name='lineage_edges')
    op.drop_index(op.f('ix_lineage_edges_from_kind_from_id'), table_name='lineage_edges')
    op.drop_table('lineage_edges')
    op.drop_table('experiments')
    op.drop_table('environments')
    op.drop_table('blob_refs')
