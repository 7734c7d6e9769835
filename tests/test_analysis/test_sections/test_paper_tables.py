"""The paper's tables beside ours."""
import pandas as pd

from analysis.sections.paper_tables import paper_tables_section


def test_paper_table_flags_a_row_trained_off_the_papers_recipe(result_row):

    def table1(seed, total, lr, recipe):
        row = result_row('centermask_r50_1x', 'maskiou', seed, 0.39, 0.35)
        row.update(grid='centermask_table1', total_batch=total,
                   world_size=total // 2, images_per_process=2,
                   accumulation=1, base_lr=lr, recipe=recipe,
                   paper_total_batch=16, paper_lr=0.01)
        return row

    def mask_ap(df):
        table = paper_tables_section(df).tables[0]
        return table[(table.row == '+ mask scoring')
                     & (table.metric == 'mask_AP')].iloc[0]

    paper = mask_ap(pd.DataFrame([table1(0, 16, 0.01, 'paper')]))
    assert paper.recipe == 'paper' and paper.batch == '16 = 8x2x1, LR 0.01'
    assert 'not the paper' not in paper.delta
    # Batch 2 at LR 0.01: 8x the per-image LR of the paper's recipe.
    off = mask_ap(pd.DataFrame([table1(0, 16, 0.01, 'paper'),
                                table1(1, 2, 0.01, 'manual')]))
    assert off.delta.endswith("(not the paper's recipe)")
    assert 'manual; batch 2 (paper 16)' in off.recipe
    assert '2 = 1x2x1, LR 0.01' in off.batch
