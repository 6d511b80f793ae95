"""catalogue: items, labels, state

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('catalog_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=36), nullable=False),
    sa.Column('embedding_key', sa.String(length=200), nullable=True),
    sa.Column('embedding_dim', sa.Integer(), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_state'))
    )
    op.create_table('items',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('predicted', sa.JSON(), nullable=False),
    sa.Column('colors', sa.JSON(), nullable=False),
    sa.Column('embedding', sa.LargeBinary(), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_items')),
    sa.UniqueConstraint('sha256', name=op.f('uq_items_sha256'))
    )
    op.create_table('item_labels',
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_item_labels_item_id_items'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('item_id', 'key', 'value', name=op.f('pk_item_labels'))
    )
    with op.batch_alter_table('item_labels', schema=None) as batch_op:
        batch_op.create_index('ix_item_labels_key_value', ['key', 'value'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('item_labels', schema=None) as batch_op:
        batch_op.drop_index('ix_item_labels_key_value')

    op.drop_table('item_labels')
    op.drop_table('items')
    op.drop_table('catalog_state')
