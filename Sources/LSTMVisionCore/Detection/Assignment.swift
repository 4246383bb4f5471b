/// Minimum-cost assignment (the linear assignment problem) for a rectangular cost matrix, as used to
/// match predicted boxes to ground truth. Solved by shortest augmenting paths with row and column
/// potentials (Hungarian / Jonker–Volgenant style), O(n²·m) for n ≤ m.
public enum Assignment {
    /// For an n×m cost matrix, returns for each row the column it is assigned to, or nil. Exactly
    /// min(n, m) rows are paired, each column at most once, with the smallest total cost.
    ///
    /// A cost of `+infinity` forbids a pair: the solution first pairs as many rows as possible through
    /// allowed pairs, then minimises the cost of those pairs, and leaves a row nil rather than give it a
    /// forbidden column. NaN and `-infinity` are rejected.
    public static func solve(_ cost: [[Double]]) -> [Int?] {
        let n = cost.count, m = cost.first?.count ?? 0
        precondition(cost.allSatisfy { $0.count == m }, "Assignment.solve: rows of different lengths")
        var low = Double.infinity, high = -Double.infinity
        for row in cost {
            for c in row {
                precondition(!c.isNaN, "Assignment.solve: NaN cost")
                precondition(c != -.infinity, "Assignment.solve: -infinity cost")
                if c.isFinite { low = min(low, c); high = max(high, c) }
            }
        }
        guard n > 0, m > 0 else { return [Int?](repeating: nil, count: n) }
        // A forbidden pair costs more than any difference the allowed pairs can make, so that one more
        // forbidden pair always outweighs it; such pairs are then dropped from the answer.
        let k = Double(min(n, m))
        let forbidden = low.isFinite ? high + k * (high - low) + k + 1 : 1
        let finite = cost.map { $0.map { $0.isFinite ? $0 : forbidden } }
        let columns: [Int?]
        if n <= m {
            columns = shortestAugmentingPaths(finite, rows: n, columns: m)
        } else {
            let transposed = (0..<m).map { j in (0..<n).map { i in finite[i][j] } }
            let rowOfColumn = shortestAugmentingPaths(transposed, rows: m, columns: n)
            var assigned = [Int?](repeating: nil, count: n)
            for (j, i) in rowOfColumn.enumerated() { if let i { assigned[i] = j } }
            columns = assigned
        }
        return columns.enumerated().map { i, j in j.flatMap { cost[i][$0].isFinite ? $0 : nil } }
    }

    /// The Hungarian algorithm with potentials for finite costs and rows ≤ columns: each row in turn
    /// is added along a shortest augmenting path in reduced costs. Every row is assigned.
    private static func shortestAugmentingPaths(_ a: [[Double]], rows n: Int, columns m: Int) -> [Int?] {
        // 1-based rows and columns; column 0 is the virtual start of each search.
        var u = [Double](repeating: 0, count: n + 1), v = [Double](repeating: 0, count: m + 1)
        var rowOf = [Int](repeating: 0, count: m + 1)
        var way = [Int](repeating: 0, count: m + 1)
        for i in 1...n {
            rowOf[0] = i
            var j0 = 0
            var minReduced = [Double](repeating: .infinity, count: m + 1)
            var used = [Bool](repeating: false, count: m + 1)
            repeat {
                used[j0] = true
                let i0 = rowOf[j0]
                var delta = Double.infinity, j1 = 0
                for j in 1...m where !used[j] {
                    let reduced = a[i0 - 1][j - 1] - u[i0] - v[j]
                    if reduced < minReduced[j] { minReduced[j] = reduced; way[j] = j0 }
                    if minReduced[j] < delta { delta = minReduced[j]; j1 = j }
                }
                for j in 0...m {
                    if used[j] { u[rowOf[j]] += delta; v[j] -= delta } else { minReduced[j] -= delta }
                }
                j0 = j1
            } while rowOf[j0] != 0
            repeat {
                let j1 = way[j0]
                rowOf[j0] = rowOf[j1]
                j0 = j1
            } while j0 != 0
        }
        var columnOf = [Int?](repeating: nil, count: n)
        for j in 1...m where rowOf[j] != 0 { columnOf[rowOf[j] - 1] = j - 1 }
        return columnOf
    }

    /// The reference answer by trying every assignment (small matrices only, for tests): the most
    /// allowed pairs, then the smallest total cost; forbidden pairs are left nil.
    static func bruteForce(_ cost: [[Double]]) -> [Int?] {
        let n = cost.count, m = cost.first?.count ?? 0
        guard n > 0, m > 0 else { return [Int?](repeating: nil, count: n) }
        var best: (allowed: Int, total: Double, columns: [Int?])?
        var columns = [Int?](repeating: nil, count: n)
        var taken = [Bool](repeating: false, count: m)
        func visit(_ i: Int, assigned: Int) {
            if i == n {
                guard assigned == min(n, m) else { return }
                let pairs = columns.enumerated().compactMap { i, j in j.map { cost[i][$0] } }
                let allowed = pairs.filter(\.isFinite)
                let total = allowed.reduce(0, +)
                if best.map({ allowed.count > $0.allowed || (allowed.count == $0.allowed && total < $0.total) })
                    ?? true {
                    best = (allowed.count, total, columns)
                }
                return
            }
            if n - i > min(n, m) - assigned { visit(i + 1, assigned: assigned) }   // leave row i unassigned
            for j in 0..<m where !taken[j] {
                taken[j] = true; columns[i] = j
                visit(i + 1, assigned: assigned + 1)
                taken[j] = false; columns[i] = nil
            }
        }
        visit(0, assigned: 0)
        return best!.columns.enumerated().map { i, j in j.flatMap { cost[i][$0].isFinite ? $0 : nil } }
    }
}
