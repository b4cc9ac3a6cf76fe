"""A grid maze with walls between cells: seed 003's 3x3 maze by default, any size from
YAML (`env.kwargs`: rows, cols, start, goal, walls).

Cells are numbered row by row from the top left (S0 ... S8 in the tutorial). Actions
follow the tutorial: 0 up, 1 right, 2 down, 3 left. `info["action_mask"]` marks the
moves that neither leave the grid nor cross a wall (Gymnasium's convention for legal
actions); an illegal move leaves the agent where it is. Reaching the goal pays 1 and
ends the episode; every other step pays 0.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

# (row, col) offset of each action: up, right, down, left
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))
# Seed 003's walls, as pairs of cells they separate (read off its figure).
TUTORIAL_WALLS = ((1, 4), (3, 4), (3, 6), (5, 8))
CELL_PIXELS = 64


class MazeEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        rows: int = 3,
        cols: int = 3,
        start: int = 0,
        goal: int = 8,
        walls: Sequence[Sequence[int]] = TUTORIAL_WALLS,
        render_mode: str | None = None,
    ) -> None:
        rows, cols, start, goal = (
            _whole_number(name, value)
            for name, value in (("rows", rows), ("cols", cols), ("start", start), ("goal", goal))
        )
        self.rows, self.cols, self.start, self.goal = rows, cols, start, goal
        self.walls = _check_layout(rows, cols, start, goal, walls)
        self.legal = _legal_moves(rows, cols, self.walls)  # (cells, 4) int8
        self.shortest_path_length()  # raises if the goal cannot be reached
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be 'rgb_array' or None, got {render_mode!r}")
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Discrete(rows * cols)
        self.action_space = gym.spaces.Discrete(len(MOVES))
        self.cell = start

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.cell = self.start
        return self.cell, self._info()

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        action = int(action)
        if self.legal[self.cell, action]:
            row, col = divmod(self.cell, self.cols)
            d_row, d_col = MOVES[action]
            self.cell = (row + d_row) * self.cols + col + d_col
        reached = self.cell == self.goal
        return self.cell, float(reached), reached, False, self._info()

    def _info(self) -> dict[str, Any]:
        return {"action_mask": self.legal[self.cell].copy()}

    def shortest_path_length(self) -> int:
        """Moves on the shortest path from start to goal (breadth-first search)."""
        return shortest_path_length(self.legal, self.cols, self.start, self.goal)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return _draw(self.rows, self.cols, self.walls, self.goal, self.cell)


def _whole_number(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _check_layout(
    rows: int, cols: int, start: int, goal: int, walls: Sequence[Sequence[int]]
) -> tuple[tuple[int, int], ...]:
    """The walls as sorted cell pairs, after checking the layout."""
    if rows < 1 or cols < 1:
        raise ValueError(f"rows and cols must be >= 1, got {rows}x{cols}")
    cells = rows * cols
    for name, cell in (("start", start), ("goal", goal)):
        if not 0 <= cell < cells:
            raise ValueError(f"{name} must be a cell in [0, {cells}), got {cell}")
    if start == goal:
        raise ValueError(f"start and goal must differ, both are {start}")
    pairs = set()
    for wall in walls:
        if len(wall) != 2:
            raise ValueError(f"a wall is a pair of cells, got {list(wall)}")
        a, b = (_whole_number("a wall's cell", cell) for cell in wall)
        if b not in _neighbours(a, rows, cols):
            raise ValueError(f"wall {list(wall)} must join two adjacent cells of {rows}x{cols}")
        pairs.add((min(a, b), max(a, b)))
    return tuple(sorted(pairs))


def _neighbours(cell: int, rows: int, cols: int) -> list[int]:
    if not 0 <= cell < rows * cols:
        return []
    row, col = divmod(cell, cols)
    return [
        (row + d_row) * cols + col + d_col
        for d_row, d_col in MOVES
        if 0 <= row + d_row < rows and 0 <= col + d_col < cols
    ]


def _legal_moves(rows: int, cols: int, walls: tuple[tuple[int, int], ...]) -> np.ndarray:
    legal = np.zeros((rows * cols, len(MOVES)), dtype=np.int8)
    for cell in range(rows * cols):
        row, col = divmod(cell, cols)
        for action, (d_row, d_col) in enumerate(MOVES):
            if 0 <= row + d_row < rows and 0 <= col + d_col < cols:
                other = (row + d_row) * cols + col + d_col
                legal[cell, action] = (min(cell, other), max(cell, other)) not in walls
    return legal


def shortest_path_length(legal: np.ndarray, cols: int, start: int, goal: int) -> int:
    distance = {start: 0}
    frontier = deque([start])
    while frontier:
        cell = frontier.popleft()
        if cell == goal:
            return distance[cell]
        row, col = divmod(cell, cols)
        for action in np.flatnonzero(legal[cell]):
            d_row, d_col = MOVES[action]
            other = (row + d_row) * cols + col + d_col
            if other not in distance:
                distance[other] = distance[cell] + 1
                frontier.append(other)
    raise ValueError(f"the goal {goal} cannot be reached from the start {start} (walls)")


def _draw(
    rows: int, cols: int, walls: tuple[tuple[int, int], ...], goal: int, agent: int
) -> np.ndarray:
    """The maze as an RGB image: grey grid, red walls, green goal, blue agent."""
    size = CELL_PIXELS
    image = np.full((rows * size + 1, cols * size + 1, 3), 255, dtype=np.uint8)
    image[::size, :] = image[:, ::size] = 200  # grid lines
    goal_row, goal_col = divmod(goal, cols)
    image[
        goal_row * size + 1 : (goal_row + 1) * size, goal_col * size + 1 : (goal_col + 1) * size
    ] = (200, 240, 200)
    for a, b in walls:
        row, col = divmod(a, cols)
        if b == a + 1:  # a vertical wall on a's right edge
            x = (col + 1) * size
            image[row * size : (row + 1) * size + 1, x - 2 : x + 3] = (220, 30, 30)
        else:  # a horizontal wall on a's bottom edge
            y = (row + 1) * size
            image[y - 2 : y + 3, col * size : (col + 1) * size + 1] = (220, 30, 30)
    row, col = divmod(agent, cols)
    ys, xs = np.ogrid[:size, :size]
    disc = (ys - size / 2) ** 2 + (xs - size / 2) ** 2 <= (size * 0.3) ** 2
    patch = image[row * size : (row + 1) * size, col * size : (col + 1) * size]
    patch[disc] = (40, 90, 220)
    return image
