import pytest
import torch

from diffmodel.data.subsets import epoch_indices, subset_for_epoch, subset_ranges


@pytest.mark.parametrize("count", [4, 5, 17, 100, 1001, 30000])
@pytest.mark.parametrize("num_subsets", [1, 2, 3, 4, 7])
def test_subsets_are_equal_disjoint_and_cover_everything(count, num_subsets):
    ranges = subset_ranges(count, num_subsets)
    assert len(ranges) == num_subsets
    sizes = [end - start for start, end in ranges]
    assert max(sizes) - min(sizes) <= 1
    # contiguous and in order: disjoint, and together exactly 0..count-1
    assert ranges[0][0] == 0 and ranges[-1][1] == count
    assert all(prev_end == start for (_, prev_end), (start, _) in zip(ranges, ranges[1:]))


def test_epochs_rotate_through_subsets_and_wrap_around():
    # E = 3 epochs per subset, N = 4 subsets: 0,0,0,1,1,1,2,2,2,3,3,3,0,0,0,...
    expected = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0, 0, 0, 1]
    assert [subset_for_epoch(e, 3, 4) for e in range(16)] == expected
    assert [subset_for_epoch(e, 1, 2) for e in range(5)] == [0, 1, 0, 1, 0]


def test_epoch_indices_are_a_permutation_of_the_epochs_subset():
    ranges = subset_ranges(103, 4)
    for epoch in range(20):
        start, end = ranges[(epoch // 3) % 4]
        indices = epoch_indices(ranges, epoch, subset_epochs=3, seed=5)
        assert sorted(indices.tolist()) == list(range(start, end))


def test_after_n_times_e_epochs_every_image_was_seen():
    ranges = subset_ranges(50, 5)
    seen = set()
    for epoch in range(5 * 2):
        seen.update(epoch_indices(ranges, epoch, subset_epochs=2, seed=0).tolist())
    assert seen == set(range(50))


def test_batch_learning_uses_every_index_every_epoch():
    ranges = subset_ranges(37, 4)
    assert subset_for_epoch(5, 0, 4) is None
    for epoch in range(3):
        assert sorted(epoch_indices(ranges, epoch, subset_epochs=0, seed=1).tolist()) == list(range(37))


def test_epoch_order_depends_only_on_seed_and_epoch():
    ranges = subset_ranges(200, 2)
    first = epoch_indices(ranges, 4, subset_epochs=2, seed=9)
    torch.manual_seed(12345)  # global RNG state must not matter (a resumed run has another one)
    torch.rand(10)
    again = epoch_indices(ranges, 4, subset_epochs=2, seed=9)
    assert torch.equal(first, again)
    # another epoch on the same subset, or another seed, is shuffled differently
    assert not torch.equal(first, epoch_indices(ranges, 5, subset_epochs=2, seed=9))
    assert not torch.equal(first, epoch_indices(ranges, 4, subset_epochs=2, seed=10))
    # and the order is actually shuffled
    assert not torch.equal(first, torch.sort(first).values)
