"""service: analyses history; an index on items.source for resumed ingests

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_items_source', 'items', ['source'], unique=False, postgresql_using='hash')
    op.create_table('analyses',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('models_key', sa.String(length=64), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analyses')),
    sa.UniqueConstraint('sha256', 'models_key', name=op.f('uq_analyses_sha256'))
    )
    with op.batch_alter_table('analyses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analyses_created_at'), ['created_at'], unique=False)

    op.create_table('analysis_labels',
    sa.Column('analysis_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['analysis_id'], ['analyses.id'], name=op.f('fk_analysis_labels_analysis_id_analyses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('analysis_id', 'key', 'value', name=op.f('pk_analysis_labels'))
    )
    with op.batch_alter_table('analysis_labels', schema=None) as batch_op:
        batch_op.create_index('ix_analysis_labels_key_value', ['key', 'value'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('analysis_labels', schema=None) as batch_op:
        batch_op.drop_index('ix_analysis_labels_key_value')

    op.drop_table('analysis_labels')
    with op.batch_alter_table('analyses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_analyses_created_at'))

    op.drop_table('analyses')
    op.drop_index('ix_items_source', table_name='items')
