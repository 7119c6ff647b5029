"""serving: deployments, the prediction-log file index, feedback labels.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table('deployments',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('model_uri', sa.String(length=500), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('workers', sa.Integer(), nullable=False),
    sa.Column('options', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('start_ms', sa.BigInteger(), nullable=False),
    sa.Column('stop_ms', sa.BigInteger(), nullable=True),
    sa.Column('rows_logged', sa.BigInteger(), nullable=False),
    sa.Column('dropped', sa.BigInteger(), nullable=False),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployments'))
    )
    op.create_index(op.f('ix_deployments_model_start_ms'), 'deployments', ['model', 'start_ms'], unique=False)
    op.create_table('prediction_files',
    sa.Column('key', sa.String(length=1000), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('deployment', sa.String(length=64), nullable=False),
    sa.Column('start_ms', sa.BigInteger(), nullable=False),
    sa.Column('end_ms', sa.BigInteger(), nullable=False),
    sa.Column('rows', sa.BigInteger(), nullable=False),
    sa.Column('digest', sa.String(length=80), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_prediction_files'))
    )
    op.create_index(op.f('ix_prediction_files_model_start_ms'), 'prediction_files', ['model', 'start_ms'], unique=False)
    op.create_index(op.f('ix_prediction_files_model_end_ms'), 'prediction_files', ['model', 'end_ms'], unique=False)
    op.create_table('feedback',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.String(length=200), nullable=False),
    sa.Column('label', sa.Text(), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('deployment', sa.String(length=64), nullable=True),
    sa.Column('user', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback'))
    )
    op.create_index(op.f('ix_feedback_request_id'), 'feedback', ['request_id'], unique=False)
    op.create_index(op.f('ix_feedback_ts'), 'feedback', ['ts'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_feedback_ts'), table_name='feedback')
    op.drop_index(op.f('ix_feedback_request_id'), table_name='feedback')
    op.drop_table('feedback')
    op.drop_index(op.f('ix_prediction_files_model_end_ms'), table_name='prediction_files')
    op.drop_index(op.f('ix_prediction_files_model_start_ms'), table_name='prediction_files')
    op.drop_table('prediction_files')
    op.drop_index(op.f('ix_deployments_model_start_ms'), table_name='deployments')
    op.drop_table('deployments')
