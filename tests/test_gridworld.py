"""GridWorld: lecture semantics, layouts, the structured backup and the Gymnasium env."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import fdrl_lib.tabular as tabular
from fdrl_lib.tabular import GridWorld, TabularMDP, value_iteration

UP, RIGHT, DOWN, LEFT = range(4)


def test_book_grid_states_cells_exits_and_start():
    grid = GridWorld.book()
    assert grid.shape == (3, 4)
    assert grid.S == 12 and grid.terminal_state == 11  # 11 open cells + hidden terminal
    assert grid.cells[:4] == [(0, 0), (0, 1), (0, 2), (0, 3)] and (1, 1) not in grid.cells
    assert grid.exits == {grid.state_of(0, 3): 1.0, grid.state_of(1, 3): -1.0}
    assert grid.start == grid.state_of(2, 0)
    assert GridWorld.ACTIONS == ("up", "right", "down", "left")
    assert GridWorld.ARROWS == ("↑", "→", "↓", "←")
    mdp = grid.mdp
    assert isinstance(mdp, TabularMDP) and (mdp.S, mdp.A) == (12, 4) and mdp.gamma == 0.9
    assert mdp.terminal.tolist() == [False] * 11 + [True] and mdp.start == grid.start


def test_state_of_rejects_walls_and_off_grid_cells():
    grid = GridWorld.book()
    with pytest.raises(ValueError, match=r"cell \(1, 1\) is a wall"):
        grid.state_of(1, 1)
    with pytest.raises(ValueError, match=r"cell \(3, 0\) is off the \(3, 4\) grid"):
        grid.state_of(3, 0)


def test_intended_move_has_probability_one_minus_noise_and_slips_are_perpendicular():
    grid = GridWorld.book(noise=0.2)
    P = grid.mdp.P  # dense (S, A, S')
    s = grid.state_of(2, 1)  # bottom middle: wall above
    assert P[s, UP, s] == pytest.approx(0.8)  # up hits the wall at (1, 1): stay
    assert P[s, UP, grid.state_of(2, 0)] == pytest.approx(0.1)
    assert P[s, UP, grid.state_of(2, 2)] == pytest.approx(0.1)
    corner = grid.state_of(0, 0)
    assert P[corner, LEFT, corner] == pytest.approx(0.9)  # off-grid left and up: both stay
    assert P[corner, LEFT, grid.state_of(1, 0)] == pytest.approx(0.1)
    assert grid.mdp.R[s].tolist() == [0.0] * 4


def test_exit_cells_send_every_action_to_the_terminal_state_with_their_reward():
    grid = GridWorld.book(living_reward=-0.1)
    mdp, T = grid.mdp, grid.terminal_state
    for s, reward in grid.exits.items():
        assert np.all(mdp.P[s, :, T] == 1.0)
        assert mdp.R[s].tolist() == [reward] * 4
    assert mdp.R[grid.state_of(2, 2)].tolist() == [-0.1] * 4  # living reward elsewhere
    assert np.all(mdp.P[T, :, T] == 1.0) and np.all(mdp.R[T] == 0.0)


def test_exit_value_is_its_number():
    grid = GridWorld.discount()
    V = value_iteration(grid.mdp).V
    for s, reward in grid.exits.items():
        assert V[s] == pytest.approx(reward)
    assert V[grid.terminal_state] == 0.0


def test_to_grid_places_values_and_nan_on_walls():
    grid = GridWorld.book()
    values = np.arange(grid.S, dtype=float)
    image = grid.to_grid(values)
    assert image.shape == (3, 4) and np.isnan(image[1, 1])
    assert image[2, 0] == grid.state_of(2, 0)
    np.testing.assert_array_equal(grid.to_grid(values[:-1]), image)  # (S-1,) works too
    with pytest.raises(ValueError, match=r"values has shape \(5,\), expected \(S,\) = \(12,\)"):
        grid.to_grid(np.zeros(5))


@pytest.mark.parametrize(
    "name, shape, n_exits",
    [("bridge", (3, 7), 12), ("cliff", (3, 5), 6), ("discount", (5, 5), 7), ("maze", (5, 4), 1)],
)
def test_classic_layouts_have_cs188_shapes(name, shape, n_exits):
    grid = getattr(GridWorld, name)()
    assert grid.shape == shape and len(grid.exits) == n_exits
    assert grid.layout[grid.cells[grid.start][0]][grid.cells[grid.start][1]] == "S"


def test_layout_cells_may_be_numeric_strings():
    grid = GridWorld([["S", "+1"], ["#", "-1"]])
    assert sorted(grid.exits.values()) == [-1.0, 1.0]


@pytest.mark.parametrize(
    "layout, kwargs, message",
    [
        ([["S", "x"]], {}, r"layout cell \(0, 1\) is 'x'"),
        ([["S", " "], [" "]], {}, "non-empty rectangle"),
        ([["#", "#"]], {}, "only walls"),
        ([["S", "S"]], {}, "2 start cells"),
        ([["S", 1]], {"noise": 1.5}, r"noise must be in \[0, 1\]"),
    ],
)
def test_invalid_layouts_are_rejected(layout, kwargs, message):
    with pytest.raises(ValueError, match=message):
        GridWorld(layout, **kwargs)


@pytest.mark.parametrize("noise", [0.0, 0.2, 0.5, 1.0])
@pytest.mark.parametrize("name", ["book", "bridge", "cliff", "discount", "maze"])
def test_structured_backup_equals_the_generic_backup(name, noise):
    grid = getattr(GridWorld, name)(noise=noise, living_reward=-0.3, gamma=0.95)
    V = np.random.default_rng(0).normal(size=grid.S)
    np.testing.assert_allclose(grid.mdp.max_backup(V), grid.mdp.backup(V).max(axis=1), atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_structured_backup_equals_the_generic_backup_on_random_layouts(seed):
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(1, 9, size=2)
    kinds = rng.choice([" ", " ", " ", "#", "exit"], size=(rows, cols))
    kinds[0, 0] = "S"
    layout = [[float(rng.integers(-5, 6)) if k == "exit" else str(k) for k in row] for row in kinds]
    grid = GridWorld(layout, noise=rng.uniform(), living_reward=rng.normal(), gamma=0.9)
    V = rng.normal(size=grid.S)
    np.testing.assert_allclose(grid.mdp.max_backup(V), grid.mdp.backup(V).max(axis=1), atol=1e-12)


def test_large_grids_are_sparse_and_the_stencil_matches_the_csr_backup():
    big = GridWorld.open_grid(50, noise=0.2, gamma=0.95)  # 2,501 states
    mdp = big.mdp
    assert mdp.sparse and len(mdp.P) == 4 and mdp.P[0].shape == (2501, 2501)
    V = np.random.default_rng(1).normal(size=mdp.S)
    np.testing.assert_allclose(mdp.max_backup(V), mdp.backup(V).max(axis=1), atol=1e-12)
    fast = value_iteration(mdp, tol=1e-10, keep_history=False)  # stencil in the loop
    slow = value_iteration(mdp, tol=1e-10)  # CSR backups in the loop
    np.testing.assert_allclose(fast.V, slow.V, atol=1e-12)
    assert fast.iterations == slow.iterations


# ----------------------------------------------------------------------------- Gymnasium
def test_importing_the_planners_does_not_import_gymnasium():
    import subprocess
    import sys

    code = "import sys, fdrl_lib.tabular; print('gymnasium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_env_id_works_through_make_env_or_register_envs_whatever_the_import_order():
    import subprocess
    import sys

    # registering is no side effect of an import: make_env (or register_envs) does it
    through_make_env = (
        "import fdrl_lib.tabular; from fdrl_lib.envs import make_env; make_env('fdrl/GridWorld-v0')"
    )
    explicit = (
        "import fdrl_lib.tabular as t, gymnasium as g; t.register_envs(); "
        "g.make('fdrl/GridWorld-v0')"
    )
    from_envs = (
        "import fdrl_lib.envs as e, gymnasium as g; e.register_envs(); g.make('fdrl/GridWorld-v0')"
    )
    for code in (through_make_env, explicit, from_envs):
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_env_passes_gymnasium_env_checker():
    env = GridWorld.discount().env(render_mode="rgb_array").unwrapped
    assert isinstance(env, tabular.GridWorldEnv) and env.spec.id == "fdrl/GridWorld-v0"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env)


def test_env_is_registered_and_reproducible_from_a_seed():
    tabular.register_envs()
    env = gym.make("fdrl/GridWorld-v0", layout=GridWorld.book().layout, noise=0.2)

    def rollout(seed):
        obs, _ = env.reset(seed=seed)
        trajectory = [obs]
        for t in range(30):
            obs, reward, terminated, truncated, _ = env.step(t % 4)
            trajectory.append((obs, reward, terminated))
            if terminated or truncated:
                break
        return trajectory

    assert rollout(3) == rollout(3)


def test_env_samples_transitions_with_the_model_probabilities():
    grid = GridWorld.book(noise=0.2)
    env = grid.env(max_episode_steps=None)
    env.reset(seed=0)
    s = grid.state_of(2, 1)
    counts = np.zeros(grid.S)
    n = 4000
    for _ in range(n):
        env.unwrapped.s = s
        obs, reward, terminated, truncated, _ = env.step(UP)
        counts[obs] += 1
        assert reward == 0.0 and not terminated
    p = grid.mdp.P[s, UP]
    assert np.all(np.abs(counts / n - p) <= 4 * np.sqrt(p * (1 - p) / n) + 1e-12)


def test_env_episode_ends_at_an_exit_with_its_reward():
    grid = GridWorld.book()
    env = grid.env()
    env.reset(seed=0)
    env.unwrapped.s = grid.state_of(0, 3)
    obs, reward, terminated, truncated, _ = env.step(LEFT)
    assert (obs, reward, terminated, truncated) == (grid.terminal_state, 1.0, True, False)


def test_env_time_limit_truncates():
    grid = GridWorld([["S", " ", " "]])  # no exit: the episode can only be cut by the limit
    env = grid.env(max_episode_steps=5)
    env.reset(seed=0)
    flags = [env.step(RIGHT)[2:4] for _ in range(5)]
    assert flags[-1] == (False, True) and all(f == (False, False) for f in flags[:-1])
    unlimited = grid.env(max_episode_steps=None)
    unlimited.reset(seed=0)
    assert not any(unlimited.step(RIGHT)[3] for _ in range(500))


def test_env_renders_ansi_and_rgb_array():
    grid = GridWorld.book()
    text_env = grid.env(render_mode="ansi")
    text_env.reset(seed=0)
    text = text_env.render()
    assert isinstance(text, str) and text.count("\n") == 3 and "A" in text and "#" in text
    rgb_env = grid.env(render_mode="rgb_array")
    rgb_env.reset(seed=0)
    frame = rgb_env.render()
    k = tabular.GridWorldEnv.CELL
    assert frame.dtype == np.uint8 and frame.shape == (3 * k, 4 * k, 3)
    rgb_env.step(RIGHT)
    assert frame.std() > 0


def test_env_rejects_unknown_render_mode():
    with pytest.raises(ValueError, match="render_mode='human'"):
        tabular.GridWorldEnv(render_mode="human")


def test_env_toy_text_table_matches_the_mdp():
    grid = GridWorld.maze(noise=0.3)
    table = grid.env().unwrapped.P
    P = np.zeros((grid.S, 4, grid.S))
    for s in range(grid.S):
        for a in range(4):
            for prob, nxt, _, _ in table[s][a]:
                P[s, a, nxt] += prob
    np.testing.assert_allclose(P, grid.mdp.P)
