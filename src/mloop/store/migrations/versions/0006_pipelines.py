"""pipelines: pipeline runs, step runs, the step cache.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table('pipeline_runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('pipeline', sa.String(length=256), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('executor', sa.String(length=300), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('inputs', sa.Text(), nullable=False),
    sa.Column('outputs', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=1000), nullable=True),
    sa.Column('start_ms', sa.BigInteger(), nullable=False),
    sa.Column('end_ms', sa.BigInteger(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_pipeline_runs_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_runs'))
    )
    op.create_index(op.f('ix_pipeline_runs_pipeline_start_ms'), 'pipeline_runs', ['pipeline', 'start_ms'], unique=False)
    op.create_index(op.f('ix_pipeline_runs_start_ms'), 'pipeline_runs', ['start_ms'], unique=False)
    op.create_table('step_cache',
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('step', sa.String(length=500), nullable=False),
    sa.Column('outputs', sa.Text(), nullable=False),
    sa.Column('pipeline_run_id', sa.String(length=32), nullable=False),
    sa.Column('node', sa.String(length=256), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=True),
    sa.Column('gates', sa.Text(), nullable=True),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_step_cache'))
    )
    op.create_table('step_runs',
    sa.Column('pipeline_run_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('step', sa.String(length=500), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('upstream', sa.Text(), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('inputs', sa.Text(), nullable=False),
    sa.Column('outputs', sa.Text(), nullable=False),
    sa.Column('cache_key', sa.String(length=80), nullable=True),
    sa.Column('cached', sa.Boolean(), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('start_ms', sa.BigInteger(), nullable=True),
    sa.Column('end_ms', sa.BigInteger(), nullable=True),
    sa.Column('logs_digest', sa.String(length=80), nullable=True),
    sa.Column('gates', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['pipeline_run_id'], ['pipeline_runs.id'], name=op.f('fk_step_runs_pipeline_run_id_pipeline_runs')),
    sa.PrimaryKeyConstraint('pipeline_run_id', 'name', name=op.f('pk_step_runs'))
    )


def downgrade() -> None:
    op.drop_table('step_runs')
    op.drop_table('step_cache')
    op.drop_index(op.f('ix_pipeline_runs_start_ms'), table_name='pipeline_runs')
    op.drop_index(op.f('ix_pipeline_runs_pipeline_start_ms'), table_name='pipeline_runs')
    op.drop_table('pipeline_runs')
